package campaigns

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"time"

	"gorm.io/gorm/clause"
)

// Public links (RSVP, unsubscribe, survey, check-in) are signed, not
// stored. Each email used to write one public_tokens row per link, three
// per guest, each a random key in a growing index: 10.9 of 36.8 s of
// PostgreSQL's time in a 60,000-guest send. A signed link is
//
//	base32(version 1 | kind | invitation id | last day valid | HMAC-SHA256(those 14 bytes)[:16])
//
// under a random key kept in the database (link_keys), made on first use
// and shared by every process. 128 bits of MAC make a link as unguessable
// as the stored 160-bit secrets were; the kind and invitation are inside
// it, so a link cannot be turned into another. Links stored before keep
// working until they expire (public_tokens.go). Lower-case base32, as the
// stored secrets were: the same alphabet in every link, 48 characters. Anyone who can read the
// database can make links, as anyone who can write it could before.

const linkVersion = 1

var linkEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

var linkKinds = map[string]byte{TokenRSVP: 1, TokenUnsubscribe: 2, TokenSurvey: 3, TokenCheckin: 4}

const (
	linkPayload = 14 // version, kind, invitation id (8), last day (4)
	linkMAC     = 16
)

// linkKeyRow is the one row of link_keys.
type linkKeyRow struct {
	ID        int16 `gorm:"primaryKey"`
	Secret    []byte
	CreatedAt time.Time
}

func (linkKeyRow) TableName() string { return "link_keys" }

// linkKey returns the database's signing key, making it if there is none
// yet. Two processes making it at once agree on whichever row landed.
func (s *Store) linkKey(ctx context.Context) ([]byte, error) {
	s.linkKeyMu.Lock()
	defer s.linkKeyMu.Unlock()
	if s.linkKeyVal != nil {
		return s.linkKeyVal, nil
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	db := s.db.WithContext(ctx)
	if err := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&linkKeyRow{ID: 1, Secret: secret, CreatedAt: s.now()}).Error; err != nil {
		return nil, err
	}
	var row linkKeyRow
	if err := db.Take(&row, 1).Error; err != nil {
		return nil, err
	}
	s.linkKeyVal = row.Secret
	return row.Secret, nil
}

// linkSigner signs the links of one claim.
type linkSigner struct {
	key []byte
	now time.Time
}

func (s *Store) linkSigner(ctx context.Context) (linkSigner, error) {
	key, err := s.linkKey(ctx)
	return linkSigner{key: key, now: s.now()}, err
}

// sign makes the link of kind for an invitation, valid for kind's lifetime
// (to the end of its last day, UTC).
func (l linkSigner) sign(kind string, invitationID int64) string {
	var b [linkPayload + linkMAC]byte
	b[0], b[1] = linkVersion, linkKinds[kind]
	binary.BigEndian.PutUint64(b[2:10], uint64(invitationID))
	binary.BigEndian.PutUint32(b[10:14], uint32(l.now.Add(tokenLifetime(kind)).Unix()/86400))
	m := hmac.New(sha256.New, l.key)
	m.Write(b[:linkPayload])
	copy(b[linkPayload:], m.Sum(nil))
	return linkEncoding.EncodeToString(b[:])
}

// signedLink is what a signed link says.
type signedLink struct {
	invitationID int64
	expiresAt    time.Time
}

// readLink checks a link of kind. signed is false for anything not shaped
// like a signed link (a stored one, or junk), which the caller may look
// up as a stored token; a signed-shaped link that fails is simply invalid.
func (s *Store) readLink(ctx context.Context, kind, token string) (l signedLink, signed, ok bool, err error) {
	if linkEncoding.DecodedLen(len(token)) != linkPayload+linkMAC {
		return l, false, false, nil
	}
	b, derr := linkEncoding.DecodeString(token)
	if derr != nil || len(b) != linkPayload+linkMAC || b[0] != linkVersion {
		return l, false, false, nil
	}
	key, err := s.linkKey(ctx)
	if err != nil {
		return l, true, false, err
	}
	m := hmac.New(sha256.New, key)
	m.Write(b[:linkPayload])
	if !hmac.Equal(m.Sum(nil)[:linkMAC], b[linkPayload:]) || b[1] != linkKinds[kind] {
		return l, true, false, nil
	}
	l.invitationID = int64(binary.BigEndian.Uint64(b[2:10]))
	l.expiresAt = time.Unix(int64(binary.BigEndian.Uint32(b[10:14])+1)*86400, 0).UTC()
	return l, true, s.now().Before(l.expiresAt) && l.invitationID > 0, nil
}

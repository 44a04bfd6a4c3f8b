package campaigns

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"time"

	"gorm.io/gorm"
)

// An email's public links (RSVP, unsubscribe, check-in or survey) are one
// link_sets row, written by the claim that sends it. Each link was one
// public_tokens row found by its hash: three rows per guest, each a random
// key in a growing index, 10.9 of 36.8 s of PostgreSQL's time in a
// 60,000-guest send. Now a link carries its row's id, and the row keeps
// each link's secret hashed:
//
//	base32(version 2 | link set id (8) | kind (1) | secret (20 random bytes))
//
// found by primary key and checked against the SHA-256 of its secret, so
// links stay 160 random bits stored hashed, and one kind's link cannot be
// turned into another's. Lower-case base32, 48 characters, the alphabet the
// stored secrets always had. Links stored before keep working until they
// expire (public_tokens.go).
const linkVersion = 2

var linkEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// linkColumns are each kind's code in a link and its hash column.
var linkColumns = map[string]struct {
	code   byte
	column string
}{
	TokenRSVP: {1, "rsvp_hash"}, TokenUnsubscribe: {2, "unsubscribe_hash"},
	TokenCheckin: {3, "checkin_hash"}, TokenSurvey: {4, "survey_hash"},
}

const (
	linkSecret = 20
	linkLen    = 1 + 8 + 1 + linkSecret
)

// LinkSet is one email's links, stored hashed.
type LinkSet struct {
	ID              int64
	InvitationID    int64
	RSVPHash        []byte `gorm:"column:rsvp_hash"`
	UnsubscribeHash []byte
	CheckinHash     []byte
	SurveyHash      []byte
	CreatedAt       time.Time
}

func (l *LinkSet) hash(kind string) *[]byte {
	switch kind {
	case TokenRSVP:
		return &l.RSVPHash
	case TokenUnsubscribe:
		return &l.UnsubscribeHash
	case TokenCheckin:
		return &l.CheckinHash
	default:
		return &l.SurveyHash
	}
}

// mintLinks writes one link set per invitation, in one statement, and
// returns each one's links by kind, in the order given.
func mintLinks(tx *gorm.DB, invitationIDs []int64, kinds []string, now time.Time) ([]map[string]string, error) {
	sets := make([]LinkSet, len(invitationIDs))
	secrets := make([][]byte, len(invitationIDs)*len(kinds))
	if _, err := rand.Read(flatten(secrets, linkSecret)); err != nil {
		return nil, err
	}
	for i, id := range invitationIDs {
		sets[i] = LinkSet{InvitationID: id, CreatedAt: now.UTC()} // SQLite compares times as text
		for k, kind := range kinds {
			h := sha256.Sum256(secrets[i*len(kinds)+k])
			*sets[i].hash(kind) = h[:]
		}
	}
	if err := insertLinkSets(tx, sets); err != nil {
		return nil, err
	}
	out := make([]map[string]string, len(sets))
	for i, set := range sets {
		out[i] = make(map[string]string, len(kinds))
		for k, kind := range kinds {
			out[i][kind] = encodeLink(set.ID, kind, secrets[i*len(kinds)+k])
		}
	}
	return out, nil
}

// flatten points each of bufs at its own n bytes of one buffer, returned
// to be filled at once.
func flatten(bufs [][]byte, n int) []byte {
	all := make([]byte, len(bufs)*n)
	for i := range bufs {
		bufs[i] = all[i*n : (i+1)*n : (i+1)*n]
	}
	return all
}

func encodeLink(setID int64, kind string, secret []byte) string {
	var b [linkLen]byte
	b[0] = linkVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(setID))
	b[9] = linkColumns[kind].code
	copy(b[10:], secret)
	return linkEncoding.EncodeToString(b[:])
}

// setLink is what a link names: its set, and the hash its secret must match
// in kind's column.
type setLink struct {
	setID  int64
	hash   []byte
	column string
}

// parseLink reads a link of kind. ok is false for anything not shaped like
// one (a stored token, or junk), which the caller may look up as a stored
// token; a link of another kind parses but names a column whose hash will
// not match.
func parseLink(kind, token string) (l setLink, ok bool) {
	if linkEncoding.DecodedLen(len(token)) != linkLen {
		return l, false
	}
	b, err := linkEncoding.DecodeString(token)
	if err != nil || len(b) != linkLen || b[0] != linkVersion {
		return l, false
	}
	col, known := linkColumns[kind]
	if !known {
		return l, false
	}
	h := sha256.Sum256(b[10:])
	if b[9] != col.code {
		// Each kind has its own secret, so the hash would not match anyway;
		// this keeps a link of one kind from ever being read as another.
		h = [32]byte{}
	}
	return setLink{setID: int64(binary.BigEndian.Uint64(b[1:9])), hash: h[:], column: col.column}, true
}

package campaigns

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"strings"
	"time"
)

// APIToken lets a script call /api/v1 with one role. Only its SHA-256 is
// stored: the plaintext is shown once, at creation.
type APIToken struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Role       Role       `json:"role"`
	TokenHash  string     `json:"-"`
	Prefix     string     `json:"prefix"`
	CreatedBy  *int64     `json:"created_by,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

const tokenPrefix = "rpt_"

// NewSecret returns a fresh random secret of 160 bits, base32, for tokens
// people copy (API tokens) and links (public tokens).
func NewSecret() string {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// HashSecret is how secrets are stored: high-entropy secrets need no slow hash.
func HashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// CreateToken makes an API token and returns its plaintext once.
func (s *Store) CreateToken(ctx context.Context, name string, role Role, createdBy *int64) (string, *APIToken, error) {
	v := Invalid{}
	name = strings.TrimSpace(name)
	if name == "" {
		v.Add("name", "is required (say what the token is for)")
	}
	if _, err := ParseRole(string(role)); err != nil {
		v.Add("role", "must be one of admin, coordinator, rep, finance")
	}
	if err := v.Err(); err != nil {
		return "", nil, err
	}
	plain := tokenPrefix + NewSecret()
	t := &APIToken{Name: name, Role: role, TokenHash: HashSecret(plain), Prefix: plain[:len(tokenPrefix)+6],
		CreatedBy: createdBy, CreatedAt: s.now()}
	if err := s.db.WithContext(ctx).Create(t).Error; err != nil {
		return "", nil, err
	}
	return plain, t, nil
}

// TokenBySecret finds the live token a Bearer secret names: kept in
// memory on PostgreSQL while this process hears of revocations
// (tokencache.go), read otherwise.
func (s *Store) TokenBySecret(ctx context.Context, plain string) (*APIToken, error) {
	bad := Errorf(EUNAUTHORIZED, "the API token is unknown or revoked")
	if !strings.HasPrefix(plain, tokenPrefix) || len(plain) > 100 {
		return nil, bad
	}
	hash := HashSecret(plain)
	s.listenForTokens()
	t, kept, gen := s.tokens.get(hash)
	if kept {
		return &t, nil
	}
	s.tokenReads.Add(1)
	// database/sql reads the row straight into the struct (GORM's generic
	// scan was a fifth of a check-in's CPU).
	q := s.rebind(`SELECT id, name, role, token_hash, prefix, created_by, created_at, last_used_at, revoked_at
		FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL`)
	err := s.sqlDB.QueryRowContext(ctx, q, hash).Scan(&t.ID, &t.Name, &t.Role, &t.TokenHash, &t.Prefix,
		&t.CreatedBy, &t.CreatedAt, &t.LastUsedAt, &t.RevokedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, bad
	}
	if err != nil {
		return nil, err
	}
	// Note use at most once a minute: a busy script should not write per call.
	now := s.now()
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) > time.Minute {
		s.db.WithContext(ctx).Model(&APIToken{}).Where("id = ?", t.ID).Update("last_used_at", now)
		t.LastUsedAt = &now
	}
	s.tokens.put(hash, t, gen)
	return &t, nil
}

// Tokens lists API tokens, newest first.
func (s *Store) Tokens(ctx context.Context) ([]APIToken, error) {
	var ts []APIToken
	err := s.db.WithContext(ctx).Order("id DESC").Find(&ts).Error
	return ts, err
}

// RevokeToken stops a token from working, at once.
func (s *Store) RevokeToken(ctx context.Context, id int64) error {
	res := s.db.WithContext(ctx).Model(&APIToken{}).Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", s.now())
	s.tokens.forget() // in this process at once; the others when notified
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return Errorf(ENOTFOUND, "no live API token %d", id)
	}
	return nil
}

package campaigns

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"net/mail"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"
)

// Role is what a user or API token may do; see app/roles.go for the matrix.
type Role string

const (
	RoleAdmin       Role = "admin"
	RoleCoordinator Role = "coordinator"
	RoleRep         Role = "rep"
	RoleFinance     Role = "finance"
)

// Roles lists every role, most powerful first.
var Roles = []Role{RoleAdmin, RoleCoordinator, RoleRep, RoleFinance}

// ParseRole accepts a role's name in any case.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	for _, v := range Roles {
		if r == v {
			return r, nil
		}
	}
	return "", &Error{Code: EINVALID, Message: "unknown role", Fields: map[string]string{
		"role": "must be one of admin, coordinator, rep, finance"}}
}

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 10

// User is a person who signs in.
type User struct {
	ID           int64      `json:"id"`
	Email        string     `json:"email"`
	Name         string     `json:"name"`
	Role         Role       `json:"role"`
	PasswordHash string     `json:"-"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	DisabledAt   *time.Time `json:"disabled_at,omitempty"`
	// SessionsValidAfter ends every session begun before it (password reset).
	SessionsValidAfter *time.Time `json:"-"`
}

// NewUser is what it takes to create a user.
type NewUser struct {
	Email    string
	Name     string
	Role     Role
	Password string
}

// NormalizeEmail lower-cases and trims an address and checks its form.
func NormalizeEmail(s string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(s))
	if e == "" {
		return "", errEmpty
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || !strings.Contains(e[strings.LastIndexByte(e, '@')+1:], ".") {
		return "", errBadEmail
	}
	return e, nil
}

var (
	errEmpty    = Errorf(EINVALID, "is required")
	errBadEmail = Errorf(EINVALID, "is not an email address like name@example.com")
)

// CreateUser adds a user with a bcrypt-hashed password.
func (s *Store) CreateUser(ctx context.Context, in NewUser) (*User, error) {
	v := Invalid{}
	email, err := NormalizeEmail(in.Email)
	if err != nil {
		v.Add("email", "%s", err.Error())
	}
	if _, err := ParseRole(string(in.Role)); err != nil {
		v.Add("role", "must be one of admin, coordinator, rep, finance")
	}
	if len(in.Password) < MinPasswordLength {
		v.Add("password", "must be at least %d characters", MinPasswordLength)
	}
	if len(in.Password) > 72 {
		v.Add("password", "must be at most 72 bytes")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(in.Password), s.bcryptCost())
	if err != nil {
		return nil, err
	}
	now := s.now()
	u := &User{Email: email, Name: strings.TrimSpace(in.Name), Role: in.Role, PasswordHash: string(hash), CreatedAt: now, UpdatedAt: now}
	if err := s.db.WithContext(ctx).Create(u).Error; err != nil {
		if isUniqueViolation(err) {
			return nil, &Error{Code: ECONFLICT, Message: "a user with this email exists", Fields: map[string]string{"email": "is already a user"}}
		}
		return nil, err
	}
	return u, nil
}

// dummyHash makes a failed lookup cost as much as a wrong password, so the
// time taken does not tell which emails are users.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("rapport-dummy-password"), bcrypt.DefaultCost)

// Authenticate returns the user whose email and password match.
func (s *Store) Authenticate(ctx context.Context, email, password string) (*User, error) {
	bad := Errorf(EUNAUTHORIZED, "wrong email or password")
	e := strings.ToLower(strings.TrimSpace(email))
	var u User
	err := s.db.WithContext(ctx).Where("email = ?", e).Take(&u).Error
	if err != nil {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		if err == gorm.ErrRecordNotFound {
			return nil, bad
		}
		return nil, err
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil || u.DisabledAt != nil {
		return nil, bad
	}
	return &u, nil
}

// User returns one user.
func (s *Store) User(ctx context.Context, id int64) (*User, error) {
	var u User
	if err := s.db.WithContext(ctx).Take(&u, id).Error; err != nil {
		return nil, notFound(err, "user", id)
	}
	return &u, nil
}

// UserByEmail returns the user with this email (any case).
func (s *Store) UserByEmail(ctx context.Context, email string) (*User, error) {
	var u User
	e := strings.ToLower(strings.TrimSpace(email))
	if err := s.db.WithContext(ctx).Where("email = ?", e).Take(&u).Error; err != nil {
		return nil, notFound(err, "user", e)
	}
	return &u, nil
}

// Users lists every user by email.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	var us []User
	err := s.db.WithContext(ctx).Order("email").Find(&us).Error
	return us, err
}

// UsersByRole lists the users who hold a role (reps for owner pickers).
func (s *Store) UsersByRole(ctx context.Context, r Role) ([]User, error) {
	var us []User
	err := s.db.WithContext(ctx).Where("role = ? AND disabled_at IS NULL", r).Order("email").Find(&us).Error
	return us, err
}

// UpdateUser changes a user's role and whether they may sign in. The last
// active admin cannot be demoted or disabled: someone must manage users.
func (s *Store) UpdateUser(ctx context.Context, id int64, role Role, disabled bool) (*User, error) {
	if _, err := ParseRole(string(role)); err != nil {
		return nil, err
	}
	var out User
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Take(&out, id).Error; err != nil {
			return notFound(err, "user", id)
		}
		if out.Role == RoleAdmin && out.DisabledAt == nil && (role != RoleAdmin || disabled) {
			var admins int64
			if err := tx.Model(&User{}).Where("role = ? AND disabled_at IS NULL", RoleAdmin).Count(&admins).Error; err != nil {
				return err
			}
			if admins <= 1 {
				return Errorf(ECONFLICT, "%s is the last active admin; make another admin first", out.Email)
			}
		}
		now := s.now()
		out.Role, out.UpdatedAt = role, now
		switch {
		case disabled && out.DisabledAt == nil:
			out.DisabledAt = &now
		case !disabled:
			out.DisabledAt = nil
		}
		return tx.Model(&User{}).Where("id = ?", id).
			Updates(map[string]any{"role": out.Role, "disabled_at": out.DisabledAt, "updated_at": now}).Error
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// SetPassword replaces a user's password.
func (s *Store) SetPassword(ctx context.Context, id int64, password string) error {
	if len(password) < MinPasswordLength || len(password) > 72 {
		return &Error{Code: EINVALID, Message: "password not accepted", Fields: map[string]string{
			"password": "must be 10 to 72 characters"}}
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.bcryptCost())
	if err != nil {
		return err
	}
	// Sessions begun before now end: whoever knew the old password is out.
	now := s.now()
	res := s.db.WithContext(ctx).Model(&User{}).Where("id = ?", id).
		Updates(map[string]any{"password_hash": string(hash), "updated_at": now, "sessions_valid_after": now})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return Errorf(ENOTFOUND, "user %d not found", id)
	}
	return nil
}

// CountUsers says how many users exist (zero on a fresh install).
func (s *Store) CountUsers(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&User{}).Count(&n).Error
	return n, err
}

// GeneratePassword returns a random password for demos and resets.
func GeneratePassword() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

func (s *Store) bcryptCost() int {
	if s.lowBcrypt {
		return bcrypt.MinCost
	}
	return bcrypt.DefaultCost
}

// UseFastPasswordHashing lowers bcrypt's cost; for tests only.
func (s *Store) UseFastPasswordHashing() { s.lowBcrypt = true }

func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	if err == gorm.ErrDuplicatedKey {
		return true
	}
	m := err.Error()
	return strings.Contains(m, "UNIQUE constraint failed") || strings.Contains(m, "SQLSTATE 23505") ||
		strings.Contains(m, "duplicate key value")
}

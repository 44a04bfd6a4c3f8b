package campaigns

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// KV is a small expiring key/value store in the database. The web layer keeps
// sessions, CSRF tokens and login rate-limit counters in it, so several web
// processes share them. Keys are stored hashed: a copy of the table does not
// hand out live session ids. Its methods match fiber.Storage.
type KV struct {
	s *Store
}

type kvRow struct {
	Key       string `gorm:"primaryKey"`
	Value     []byte
	ExpiresAt int64
}

func (kvRow) TableName() string { return "kv_store" }

// KV returns the key/value store.
func (s *Store) KV() *KV { return &KV{s: s} }

func kvCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}

// Get returns nil, nil for a missing or expired key.
func (k *KV) Get(key string) ([]byte, error) {
	ctx, cancel := kvCtx()
	defer cancel()
	var r kvRow
	err := k.s.db.WithContext(ctx).Where("key = ?", HashSecret(key)).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if r.ExpiresAt != 0 && r.ExpiresAt <= time.Now().Unix() {
		return nil, nil
	}
	return r.Value, nil
}

// Set stores val under key; exp 0 keeps it until deleted.
func (k *KV) Set(key string, val []byte, exp time.Duration) error {
	if key == "" || len(val) == 0 {
		return nil
	}
	ctx, cancel := kvCtx()
	defer cancel()
	var expires int64
	if exp > 0 {
		expires = time.Now().Add(exp).Unix()
	}
	return k.s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "key"}},
		DoUpdates: clause.AssignmentColumns([]string{"value", "expires_at"}),
	}).Create(&kvRow{Key: HashSecret(key), Value: val, ExpiresAt: expires}).Error
}

// Delete removes key.
func (k *KV) Delete(key string) error {
	ctx, cancel := kvCtx()
	defer cancel()
	return k.s.db.WithContext(ctx).Where("key = ?", HashSecret(key)).Delete(&kvRow{}).Error
}

// Reset removes everything: every session ends.
func (k *KV) Reset() error {
	ctx, cancel := kvCtx()
	defer cancel()
	return k.s.db.WithContext(ctx).Where("1 = 1").Delete(&kvRow{}).Error
}

// Close does nothing: the Store owns the connections.
func (k *KV) Close() error { return nil }

// PurgeExpiredKV deletes expired entries and says how many.
func (s *Store) PurgeExpiredKV(ctx context.Context) (int64, error) {
	res := s.db.WithContext(ctx).Where("expires_at > 0 AND expires_at <= ?", time.Now().Unix()).Delete(&kvRow{})
	return res.RowsAffected, res.Error
}

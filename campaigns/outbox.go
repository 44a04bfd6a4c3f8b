package campaigns

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// OutboxMessage is an email kept locally instead of sent: what the
// recipient would have received, in full.
type OutboxMessage struct {
	ID           int64     `json:"id"`
	CampaignID   *int64    `json:"campaign_id"`
	InvitationID *int64    `json:"invitation_id"`
	Kind         string    `json:"kind"`
	BatchID      string    `json:"-"`
	ToEmail      string    `json:"to_email"`
	ToName       string    `json:"to_name"`
	FromEmail    string    `json:"from_email"`
	Subject      string    `json:"subject"`
	TextBody     string    `json:"text_body"`
	HTMLBody     string    `json:"html_body"`
	Headers      string    `json:"headers"`     // JSON object
	Attachments  string    `json:"attachments"` // JSON list of {filename, type, content (base64)}
	CreatedAt    time.Time `json:"created_at"`
}

func (OutboxMessage) TableName() string { return "outbox" }

// StoreOutbox keeps a batch of rendered emails.
func (s *Store) StoreOutbox(ctx context.Context, msgs []OutboxMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *gorm.DB) error { return tx.CreateInBatches(msgs, 500).Error })
}

// CancelOutboxBatch removes a batch's emails: the outbox's equivalent of
// recalling a scheduled send, so a batch re-sent after a crash is kept once.
func (s *Store) CancelOutboxBatch(ctx context.Context, batchID string) error {
	return s.db.WithContext(ctx).Where("batch_id = ?", batchID).Delete(&OutboxMessage{}).Error
}

// Outbox lists kept emails, newest first, optionally of one campaign.
func (s *Store) Outbox(ctx context.Context, campaignID int64, limit int) ([]OutboxMessage, error) {
	var ms []OutboxMessage
	q := s.db.WithContext(ctx).Omit("html_body", "attachments").Order("id DESC").Limit(limit)
	if campaignID > 0 {
		q = q.Where("campaign_id = ?", campaignID)
	}
	return ms, q.Find(&ms).Error
}

// OutboxCount counts kept emails.
func (s *Store) OutboxCount(ctx context.Context, campaignID int64) (int64, error) {
	var n int64
	q := s.db.WithContext(ctx).Model(&OutboxMessage{})
	if campaignID > 0 {
		q = q.Where("campaign_id = ?", campaignID)
	}
	return n, q.Count(&n).Error
}

// OutboxMessage returns one kept email in full.
func (s *Store) OutboxMessage(ctx context.Context, id int64) (*OutboxMessage, error) {
	var m OutboxMessage
	if err := s.db.WithContext(ctx).Take(&m, id).Error; err != nil {
		return nil, notFound(err, "email", id)
	}
	return &m, nil
}

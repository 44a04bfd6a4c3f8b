package campaigns

import (
	"context"
	"fmt"
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

// StoreOutbox keeps a batch's rendered emails, unless the batch was
// cancelled: then it keeps nothing and says so (kept false), as SendGrid
// drops a send made with a cancelled batch id. A worker that stalled past
// its lease may send after recovery has recalled its batch and queued the
// emails again; keeping them would send them twice.
func (s *Store) StoreOutbox(ctx context.Context, batchID string, msgs []OutboxMessage) (kept bool, err error) {
	if batchID == "" {
		return false, &Error{Code: EINVALID, Message: "an outbox batch needs its batch id", Fields: map[string]string{"batch_id": "is required"}}
	}
	err = s.tx(ctx, func(tx *gorm.DB) error {
		// Take the batch's row (made here on its first send): a cancel of
		// the same batch waits for this to commit, then removes what it
		// kept; or this waits for the cancel, and sees it.
		var cancelled []int
		if err := tx.Raw(`INSERT INTO outbox_batches (batch_id, created_at) VALUES (?, ?)
			ON CONFLICT (batch_id) DO UPDATE SET created_at = outbox_batches.created_at
			RETURNING CASE WHEN cancelled_at IS NULL THEN 0 ELSE 1 END`,
			batchID, s.now().UTC()).Scan(&cancelled).Error; err != nil {
			return err
		}
		if len(cancelled) != 1 {
			return fmt.Errorf("outbox batch %s: the batch's row was not returned", batchID)
		}
		if cancelled[0] == 1 || len(msgs) == 0 {
			return nil
		}
		for i := range msgs {
			msgs[i].BatchID = batchID
		}
		kept = true
		return tx.CreateInBatches(msgs, 500).Error
	})
	return kept && err == nil, err
}

// CancelOutboxBatch recalls a batch: the outbox's equivalent of cancelling
// a scheduled send. It removes the batch's emails and remembers the
// cancel, so that nothing sent with the batch id later is kept either.
func (s *Store) CancelOutboxBatch(ctx context.Context, batchID string) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		now := s.now().UTC()
		if err := tx.Exec(`INSERT INTO outbox_batches (batch_id, created_at, cancelled_at) VALUES (?, ?, ?)
			ON CONFLICT (batch_id) DO UPDATE SET cancelled_at = coalesce(outbox_batches.cancelled_at, excluded.cancelled_at)`,
			batchID, now, now).Error; err != nil {
			return err
		}
		return tx.Where("batch_id = ?", batchID).Delete(&OutboxMessage{}).Error
	})
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

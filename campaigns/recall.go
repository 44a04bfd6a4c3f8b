package campaigns

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// A batch handed to the mail service ahead of its send time (SendGrid:
// send_at 15 minutes ahead, or the campaign's later send time) waits there
// and can be recalled until its cancel_by (SendGrid: 10 minutes before it
// goes). Its rows say "sent" from the hand-over. A campaign cancelled
// meanwhile is cancelled for those emails too: the dispatcher recalls
// their batches (RecallableBatches, then MarkRecalled), and what could no
// longer be recalled stays sent.

// recallableRows is the condition on a queue's rows handed over and still
// recallable at the time given as its argument.
const recallableRows = "status = 'sent' AND batch_id IS NOT NULL AND cancel_by > ?"

// RecalledReason is the status reason of a row whose batch was recalled.
const RecalledReason = "recalled before its send time: the campaign was cancelled"

// RecallableUntil is the last moment at which some of a campaign's
// invitations, handed over already, can still be recalled; nil when none
// can. Until then a sent campaign can still be cancelled.
func (s *Store) RecallableUntil(ctx context.Context, campaignID int64) (*time.Time, error) {
	var until []time.Time
	// The latest row, not max(): SQLite hands an aggregate of a time back as text.
	err := s.db.WithContext(ctx).Model(&Invitation{}).
		Where("campaign_id = ? AND "+recallableRows, campaignID, s.now()).
		Order("cancel_by DESC").Limit(1).Pluck("cancel_by", &until).Error
	if err != nil || len(until) == 0 {
		return nil, err
	}
	t := until[0].UTC()
	return &t, nil
}

// HandedBatch is a batch the mail service accepted and still holds.
type HandedBatch struct {
	Queue      Queue
	CampaignID int64
	BatchID    string
	Count      int64
}

// RecallableBatches lists the batches of cancelled campaigns that the mail
// service holds and can still recall. Only campaigns cancelled within
// lookback are looked at: a batch handed over at most a lead before its
// send time, and settled at most a lease after its claim, is recallable
// for less than lead + lease after the cancel, and older cancelled
// campaigns are not read again on every tick.
func (s *Store) RecallableBatches(ctx context.Context, lookback time.Duration) ([]HandedBatch, error) {
	now := s.now()
	var ids []int64
	if err := s.db.WithContext(ctx).Model(&Campaign{}).Where("status = ? AND updated_at >= ?", StatusCancelled, now.Add(-lookback)).
		Order("id").Pluck("id", &ids).Error; err != nil || len(ids) == 0 {
		return nil, err
	}
	var out []HandedBatch
	for _, q := range []Queue{QueueInvitations, QueueFollowups} {
		var bs []HandedBatch
		if err := s.db.WithContext(ctx).Table(string(q)).Select("campaign_id, batch_id, count(*) AS count").
			Where("campaign_id IN ? AND "+recallableRows, ids, now).
			Group("campaign_id, batch_id").Order("campaign_id, batch_id").Scan(&bs).Error; err != nil {
			return nil, err
		}
		for i := range bs {
			bs[i].Queue = q
		}
		out = append(out, bs...)
	}
	return out, nil
}

// MarkRecalled records that a cancelled campaign's batch was recalled at
// the mail service: its rows are suppressed with the reason, never sent.
// The settle had recorded their customers as contacted; a customer whose
// last contact was this batch gets back the last one Rapport still sent
// them (none: no contact), so a campaign cancelled and sent again, or the
// next one's "not contacted within" filter, does not skip them for an
// email they never got.
func (s *Store) MarkRecalled(ctx context.Context, q Queue, batchID string) (int64, error) {
	now := s.now()
	var n int64
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var rows []struct {
			CustomerID int64
			SentAt     *time.Time
		}
		where := "batch_id = ? AND status = 'sent' AND campaign_id IN (SELECT id FROM campaigns WHERE status = ?)"
		if err := tx.Table(string(q)).Select("customer_id, sent_at").Where(where, batchID, StatusCancelled).
			Scan(&rows).Error; err != nil || len(rows) == 0 {
			return err
		}
		res := tx.Table(string(q)).Where(where, batchID, StatusCancelled).
			Updates(map[string]any{"status": InvSuppressed, "status_reason": RecalledReason, "sent_at": nil, "updated_at": now})
		if res.Error != nil {
			return res.Error
		}
		n = res.RowsAffected
		return restoreContacts(tx, rows)
	})
	return n, err
}

// restoreContacts puts back the last contact of customers whose recorded
// one is a send now recalled (customer and that send's time): the latest
// invitation or follow-up still sent to them, or no contact at all. A
// contact known only from seeded history is not kept for them.
func restoreContacts(tx *gorm.DB, recalled []struct {
	CustomerID int64
	SentAt     *time.Time
}) error {
	sentAt := map[int64]time.Time{}
	var ids []int64
	for _, r := range recalled {
		if r.SentAt != nil {
			if _, ok := sentAt[r.CustomerID]; !ok {
				ids = append(ids, r.CustomerID)
			}
			sentAt[r.CustomerID] = *r.SentAt
		}
	}
	if len(ids) == 0 {
		return nil
	}
	var now []customerContact
	if err := tx.Where("customer_id IN ?", ids).Find(&now).Error; err != nil {
		return err
	}
	var undo []int64
	for _, c := range now {
		if c.LastContactedAt.Equal(sentAt[c.CustomerID]) {
			undo = append(undo, c.CustomerID)
		}
	}
	if len(undo) == 0 {
		return nil // contacted again since, or never recorded
	}
	var sends []struct {
		CustomerID int64
		SentAt     time.Time
	}
	for _, q := range []Queue{QueueInvitations, QueueFollowups} {
		var got []struct {
			CustomerID int64
			SentAt     time.Time
		}
		if err := tx.Table(string(q)).Select("customer_id, sent_at").
			Where("customer_id IN ? AND sent_at IS NOT NULL AND status NOT IN ?", undo, []string{string(InvSuppressed), string(InvFailed)}).
			Scan(&got).Error; err != nil {
			return err
		}
		sends = append(sends, got...)
	}
	last := map[int64]time.Time{}
	for _, x := range sends {
		if x.SentAt.After(last[x.CustomerID]) {
			last[x.CustomerID] = x.SentAt
		}
	}
	if err := tx.Where("customer_id IN ?", undo).Delete(&customerContact{}).Error; err != nil {
		return err
	}
	var back []customerContact
	for _, id := range undo {
		if t, ok := last[id]; ok {
			back = append(back, customerContact{CustomerID: id, LastContactedAt: t})
		}
	}
	if len(back) == 0 {
		return nil
	}
	return tx.CreateInBatches(back, 1000).Error
}

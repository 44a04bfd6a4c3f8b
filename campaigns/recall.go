package campaigns

import (
	"context"
	"time"
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
func (s *Store) MarkRecalled(ctx context.Context, q Queue, batchID string) (int64, error) {
	now := s.now()
	res := s.db.WithContext(ctx).Table(string(q)).
		Where("batch_id = ? AND status = 'sent' AND campaign_id IN (SELECT id FROM campaigns WHERE status = ?)", batchID, StatusCancelled).
		Updates(map[string]any{"status": InvSuppressed, "status_reason": RecalledReason, "sent_at": nil, "updated_at": now})
	return res.RowsAffected, res.Error
}

package campaigns

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// EmailEvent is a delivery event reported by SendGrid's event webhook.
type EmailEvent struct {
	SGEventID    string `gorm:"column:sg_event_id;primaryKey"`
	InvitationID *int64
	Event        string
	Email        string
	Reason       string
	OccurredAt   time.Time
	ReceivedAt   time.Time
}

// Event kinds Rapport acts on (others are recorded and ignored).
const (
	EvDelivered        = "delivered"
	EvBounce           = "bounce"
	EvDropped          = "dropped"
	EvDeferred         = "deferred"
	EvSpamReport       = "spamreport"
	EvUnsubscribe      = "unsubscribe"
	EvGroupUnsubscribe = "group_unsubscribe"
	EvOpen             = "open"
	EvClick            = "click"
)

// ApplyEmailEvents records a webhook batch and applies each event once:
// SendGrid delivers events several times and out of order, so each is
// keyed by sg_event_id, and states only move forward (a bounce is final
// whether it arrives before or after "delivered"). Bounces, spam reports
// and unsubscribes suppress the customer from every future send.
func (s *Store) ApplyEmailEvents(ctx context.Context, evs []EmailEvent) (applied int, err error) {
	err = s.tx(ctx, func(tx *gorm.DB) error {
		now := s.now()
		// What the batch refers to, asked once for the whole batch rather
		// than per event (1,000-event batches: see README, Performance).
		var invIDs []int64
		var eventIDs []string
		for i := range evs {
			if evs[i].InvitationID != nil {
				invIDs = append(invIDs, *evs[i].InvitationID)
			}
			eventIDs = append(eventIDs, evs[i].SGEventID)
		}
		known := map[int64]bool{}
		seen := map[string]bool{}
		for start := 0; start < len(evs); start += 5000 {
			end := min(start+5000, len(evs))
			var ids []int64
			if start < len(invIDs) {
				if err := tx.Model(&Invitation{}).Where("id IN ?", invIDs[start:min(end, len(invIDs))]).Pluck("id", &ids).Error; err != nil {
					return err
				}
			}
			for _, id := range ids {
				known[id] = true
			}
			var old []string
			if err := tx.Model(&EmailEvent{}).Where("sg_event_id IN ?", eventIDs[start:end]).Pluck("sg_event_id", &old).Error; err != nil {
				return err
			}
			for _, id := range old {
				seen[id] = true
			}
		}
		var fresh []EmailEvent
		for i := range evs {
			e := evs[i]
			if seen[e.SGEventID] {
				continue // delivered before (SendGrid retries), or twice in this batch
			}
			seen[e.SGEventID] = true
			e.ReceivedAt = now
			if e.InvitationID != nil && !known[*e.InvitationID] {
				e.InvitationID = nil // from another system sharing the account
			}
			fresh = append(fresh, e)
		}
		if len(fresh) == 0 {
			return nil
		}
		// A copy arriving at the same moment through another request is
		// skipped here; applying an event twice changes nothing anyway,
		// since states only move forward and credits are keyed.
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(fresh, 500).Error; err != nil {
			return err
		}
		var delivered []Invitation
		for i := range fresh {
			applied++
			if err := s.applyEvent(tx, &fresh[i], &delivered); err != nil {
				return err
			}
		}
		return s.creditInvitations(tx, delivered, TriggerDelivered)
	})
	return applied, err
}

// applyEvent moves one invitation or customer on; the invitations newly
// delivered are added to delivered, to be credited together.
func (s *Store) applyEvent(tx *gorm.DB, e *EmailEvent, delivered *[]Invitation) error {
	inv := tx.Model(&Invitation{})
	if e.InvitationID != nil {
		inv = inv.Where("id = ?", *e.InvitationID)
	}
	at := e.OccurredAt.UTC()
	consent := func(state ConsentState, why string) error {
		q := tx.Model(&Customer{})
		if e.InvitationID != nil {
			q = q.Where("id = (SELECT customer_id FROM invitations WHERE id = ?)", *e.InvitationID)
		} else if e.Email != "" {
			q = q.Where("email = ?", e.Email)
		} else {
			return nil
		}
		// An unsubscribe never overrides a harder state (a bounce).
		if state == Unsubscribed {
			q = q.Where("consent_state = ?", Subscribed)
		} else {
			q = q.Where("consent_state <> ?", state)
		}
		return q.Updates(map[string]any{"consent_state": state, "consent_changed_at": at, "consent_reason": why, "updated_at": s.now()}).Error
	}
	switch e.Event {
	case EvDelivered:
		if e.InvitationID == nil {
			return nil
		}
		// One statement that says whom it moved (a second, reading the row
		// back, was half of a batch of deliveries' round trips).
		var rows []Invitation
		if err := tx.Raw(`UPDATE invitations SET status = ?, delivered_at = ?, updated_at = ?
			WHERE id = ? AND status IN ('sending', 'sent') RETURNING id, campaign_id, customer_id`,
			InvDelivered, at, s.now(), *e.InvitationID).Scan(&rows).Error; err != nil {
			return err
		}
		*delivered = append(*delivered, rows...)
		return nil
	case EvBounce, EvDropped:
		if e.InvitationID != nil {
			if err := inv.Where("status IN ('sending', 'sent', 'delivered')").Updates(map[string]any{"status": InvFailed,
				"status_reason": truncate(e.Event+": "+e.Reason, 500), "updated_at": s.now()}).Error; err != nil {
				return err
			}
		}
		if e.Event == EvBounce {
			return consent(Bounced, truncate("bounce: "+e.Reason, 500))
		}
		return nil
	case EvSpamReport:
		return consent(SpamReported, "reported the email as spam")
	case EvUnsubscribe, EvGroupUnsubscribe:
		return consent(Unsubscribed, "unsubscribed through SendGrid ("+e.Event+")")
	case EvOpen:
		if e.InvitationID == nil {
			return nil
		}
		return inv.Where("opened_at IS NULL").Update("opened_at", at).Error
	case EvClick:
		if e.InvitationID == nil {
			return nil
		}
		return inv.Where("clicked_at IS NULL").Update("clicked_at", at).Error
	}
	return nil // deferred and others: recorded only
}

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
		for i := range evs {
			e := &evs[i]
			e.ReceivedAt = now
			if e.InvitationID != nil {
				var n int64
				if err := tx.Model(&Invitation{}).Where("id = ?", *e.InvitationID).Count(&n).Error; err != nil {
					return err
				}
				if n == 0 {
					e.InvitationID = nil // from another system sharing the account
				}
			}
			res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(e)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				continue // seen before
			}
			applied++
			if err := s.applyEvent(tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	return applied, err
}

func (s *Store) applyEvent(tx *gorm.DB, e *EmailEvent) error {
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
		res := inv.Where("status IN ('sending', 'sent')").Updates(map[string]any{"status": InvDelivered, "delivered_at": at, "updated_at": s.now()})
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		var row Invitation
		if err := tx.Select("id, campaign_id, customer_id").Take(&row, *e.InvitationID).Error; err != nil {
			return err
		}
		return s.creditInvitations(tx, []Invitation{row}, TriggerDelivered)
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

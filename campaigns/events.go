package campaigns

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/rapport/rapport/config"
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
		// than per event (1,000-event batches: see docs/performance.md).
		var invIDs []int64
		var eventIDs []string
		for i := range evs {
			if evs[i].InvitationID != nil {
				invIDs = append(invIDs, *evs[i].InvitationID)
			}
			eventIDs = append(eventIDs, evs[i].SGEventID)
		}
		emailOf := map[int64]string{} // our invitations the batch names, and their addresses
		seen := map[string]bool{}
		for start := 0; start < len(evs); start += 5000 {
			end := min(start+5000, len(evs))
			var invs []struct {
				ID    int64
				Email string
			}
			if start < len(invIDs) {
				if err := tx.Model(&Invitation{}).Select("id, email").Where("id IN ?", invIDs[start:min(end, len(invIDs))]).Scan(&invs).Error; err != nil {
					return err
				}
			}
			for _, inv := range invs {
				emailOf[inv.ID] = inv.Email
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
			if e.InvitationID != nil && !isOurs(e, emailOf) {
				e.InvitationID = nil // from another system sharing the account
			}
			fresh = append(fresh, e)
		}
		if len(fresh) == 0 {
			return nil
		}
		if s.dialect == config.Postgres {
			if err := lockInvitations(tx, fresh); err != nil {
				return err
			}
		}
		// A copy arriving at the same moment through another request is
		// skipped here; applying an event twice changes nothing anyway,
		// since states only move forward and credits are keyed.
		if err := insertEmailEvents(tx, fresh); err != nil {
			return err
		}
		applied = len(fresh)
		var delivered []Invitation
		oneByOne := fresh
		if s.dialect == config.Postgres {
			var err error
			if oneByOne, err = s.applyInBulk(tx, fresh, &delivered); err != nil {
				return err
			}
		}
		for i := range oneByOne {
			if err := s.applyEvent(tx, &oneByOne[i], &delivered); err != nil {
				return err
			}
		}
		return s.creditInvitations(tx, delivered, TriggerDelivered)
	})
	return applied, err
}

// isOurs says whether an event that names one of our invitation ids is
// about that invitation. Another system on the same SendGrid account (a
// staging copy, another app) may put the same number in custom_args; its
// event is for another address, and applying it would fail our invitation
// and bounce our customer. SendGrid always reports the recipient, so an
// event without one is not taken as ours either.
func isOurs(e EmailEvent, emailOf map[int64]string) bool {
	want, ok := emailOf[*e.InvitationID]
	return ok && e.Email != "" && strings.EqualFold(strings.TrimSpace(e.Email), strings.TrimSpace(want))
}

// lockInvitations locks every invitation a batch's events name, in id
// order, before anything else touches them, as RSVP and check-in batches
// lock theirs. Otherwise two requests whose events crossed (a delivery in
// one, an open in the other) each held a row the other wanted, and
// PostgreSQL aborted one as a deadlock (TestCrossingWebhookBatchesDoNotDeadlock);
// and recording the events, whose foreign keys take each invitation's key
// share in the order the events came, could cross an RSVP batch's locks.
// NO KEY UPDATE is what the updates take anyway.
func lockInvitations(tx *gorm.DB, evs []EmailEvent) error {
	ids := map[int64]bool{}
	for _, e := range evs {
		if e.InvitationID != nil {
			ids[*e.InvitationID] = true
		}
	}
	if len(ids) == 0 {
		return nil
	}
	var locked int64
	return tx.Raw(`SELECT count(*) FROM (SELECT id FROM invitations WHERE id = ANY(?) ORDER BY id FOR NO KEY UPDATE) l`,
		pgArray{slices.Sorted(maps.Keys(ids))}).Scan(&locked).Error
}

// insertEmailEvents records a batch's new events: on PostgreSQL in one
// statement of arrays; a copy that another request recorded meanwhile is
// skipped.
func insertEmailEvents(tx *gorm.DB, evs []EmailEvent) error {
	if tx.Dialector.Name() != "postgres" {
		return tx.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(evs, 500).Error
	}
	n := len(evs)
	id, kind, email, reason := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	inv := make([]*int64, n)
	at, got := make([]time.Time, n), make([]time.Time, n)
	for i, e := range evs {
		id[i], inv[i], kind[i], email[i], reason[i] = e.SGEventID, e.InvitationID, e.Event, e.Email, e.Reason
		at[i], got[i] = e.OccurredAt.UTC(), e.ReceivedAt.UTC()
	}
	return tx.Exec(`INSERT INTO email_events (sg_event_id, invitation_id, event, email, reason, occurred_at, received_at)
		SELECT * FROM unnest(?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::timestamptz[], ?::timestamptz[])
		ON CONFLICT DO NOTHING`,
		pgArray{id}, pgArray{inv}, pgArray{kind}, pgArray{email}, pgArray{reason}, pgArray{at}, pgArray{got}).Error
}

// applyInBulk applies a batch's deliveries, opens and clicks on
// PostgreSQL with one statement per kind. One statement per event, most of
// it this process building them, took 134-140 ms for 1,000 mixed events;
// now 38-42 ms (BenchmarkApplyEmailEvents). Only the first of each kind
// per invitation counts, as applied in order: the later ones find the
// state already moved. An invitation that a bounce or drop in this batch
// fails keeps all its events in order, since whether it is credited as
// delivered depends on which came first. It returns the events to apply
// one by one, in the order given.
func (s *Store) applyInBulk(tx *gorm.DB, evs []EmailEvent, delivered *[]Invitation) ([]EmailEvent, error) {
	failing := map[int64]bool{}
	for _, e := range evs {
		if e.InvitationID != nil && (e.Event == EvBounce || e.Event == EvDropped) {
			failing[*e.InvitationID] = true
		}
	}
	type firsts struct {
		at   map[int64]time.Time
		sets string // what the kind's statement sets, from u.at
		when string // and on which rows
	}
	kinds := map[string]*firsts{
		EvDelivered: {sets: "status = 'delivered', delivered_at = u.at", when: "i.status IN ('sending', 'sent')"},
		EvOpen:      {sets: "opened_at = u.at", when: "i.opened_at IS NULL"},
		EvClick:     {sets: "clicked_at = u.at", when: "i.clicked_at IS NULL"},
	}
	var rest []EmailEvent
	for _, e := range evs {
		k := kinds[e.Event]
		if k == nil || (e.InvitationID != nil && failing[*e.InvitationID]) {
			rest = append(rest, e)
			continue
		}
		if e.InvitationID == nil {
			continue // not one of ours: nothing to move
		}
		if k.at == nil {
			k.at = map[int64]time.Time{}
		}
		if _, ok := k.at[*e.InvitationID]; !ok {
			k.at[*e.InvitationID] = e.OccurredAt.UTC()
		}
	}
	now := s.now()
	for _, kind := range []string{EvDelivered, EvOpen, EvClick} {
		k := kinds[kind]
		if len(k.at) == 0 {
			continue
		}
		ids := slices.Sorted(maps.Keys(k.at))
		at := make([]time.Time, len(ids))
		for i, id := range ids {
			at[i] = k.at[id]
		}
		var moved []Invitation
		if err := tx.Raw(`UPDATE invitations i SET `+k.sets+`, updated_at = ?
			FROM unnest(?::bigint[], ?::timestamptz[]) AS u(id, at)
			WHERE i.id = u.id AND `+k.when+`
			RETURNING i.id, i.campaign_id, i.customer_id`, now, pgArray{ids}, pgArray{at}).Scan(&moved).Error; err != nil {
			return nil, err
		}
		if kind == EvDelivered {
			*delivered = append(*delivered, moved...)
		}
	}
	return rest, nil
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
			// Follow-ups (reminders, seats, updates, surveys) carry their
			// invitation's id and go only to guests who answered or came:
			// a bounce for such a guest is a follow-up's, or comes after
			// the invitation reached them. Their consent still records it.
			if err := inv.Where("status IN ('sending', 'sent', 'delivered') AND rsvp = ? AND NOT attended", RSVPNone).Updates(map[string]any{"status": InvFailed,
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

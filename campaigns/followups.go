package campaigns

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/rapport/rapport/config"
)

// Follow-up kinds.
const (
	FollowReminder = "reminder" // before the event, to those who said yes
	FollowSeat     = "seat"     // a seat freed up for someone on the waitlist
	FollowUpdate   = "update"   // the event's time or place changed
	FollowSurvey   = "survey"   // after the event, to those who came: 0-10
)

// Followup is one follow-up email of an invitation.
type Followup struct {
	ID           int64
	CampaignID   int64
	InvitationID int64
	CustomerID   int64
	Email        string
	Kind         string
	DedupeKey    string
	DueAt        time.Time
	Status       InvitationStatus
	Uncertain    bool
	Attempts     int
	LeaseOwner   *string
	LeaseUntil   *time.Time
	BatchID      *string
	CancelBy     *time.Time
	MessageID    *string
	StatusReason string
	SentAt       *time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// ReminderOffsets reads the campaign's reminder schedule: how long before
// the event each reminder goes out (default 48h).
func (c *Campaign) ReminderOffsets() []time.Duration {
	var raw []string
	if err := json.Unmarshal([]byte(c.Reminders), &raw); err != nil {
		return nil
	}
	var out []time.Duration
	for _, r := range raw {
		if d, err := time.ParseDuration(r); err == nil && d > 0 {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] > out[j] })
	return out
}

// enqueueFollowups adds a follow-up for each invitation matched by where,
// once per dedupe key (a repeat adds nothing).
func (s *Store) enqueueFollowups(tx *gorm.DB, campaignID int64, kind, key string, due time.Time, where string, args ...any) (int64, error) {
	now := s.now()
	q := tx.Model(&Invitation{}).Select("campaign_id, id, customer_id, email, ?, ?, ?, 'pending', ?, 0, '', ?, ?", kind, key, due, false, now, now).
		Where("campaign_id = ? AND NOT holdout", campaignID).Where(where, args...)
	res := tx.Exec("INSERT INTO followups (campaign_id, invitation_id, customer_id, email, kind, dedupe_key, due_at, status, "+
		"uncertain, attempts, status_reason, created_at, updated_at) ? ON CONFLICT DO NOTHING", q)
	return res.RowsAffected, res.Error
}

// EnqueueReminders queues each event's reminder once its time has come
// (e.g. 48 hours before), for everyone who has said yes by then; it runs
// every tick, so a yes that arrives later is still reminded, once.
//
// Only the latest reminder whose time has passed is queued: a yes that
// arrives after several of them (one hour before an event with 48h and
// 2h reminders) gets one reminder, not one per time passed back to back.
// Those who said yes earlier had each earlier one at its time.
func (s *Store) EnqueueReminders(ctx context.Context) (int64, error) {
	var cs []Campaign
	now := s.now()
	if err := s.db.WithContext(ctx).Where("kind = ? AND status IN ? AND starts_at > ?", KindEvent,
		[]Status{StatusSending, StatusSent}, now).Find(&cs).Error; err != nil {
		return 0, err
	}
	var total int64
	for i := range cs {
		c := &cs[i]
		latest := time.Duration(0)
		for _, off := range c.ReminderOffsets() { // furthest from the event first
			if !now.Before(c.StartsAt.Add(-off)) {
				latest = off
			}
		}
		if latest == 0 {
			continue
		}
		n, err := s.enqueueFollowups(s.db.WithContext(ctx), c.ID, FollowReminder, "reminder:"+latest.String(), now, "rsvp = ?", RSVPYes)
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// DueFollowup is a campaign with follow-ups of one kind waiting.
type DueFollowup struct {
	CampaignID int64
	Kind       string
}

// DueFollowups lists (campaign, kind) pairs with follow-ups due now.
func (s *Store) DueFollowups(ctx context.Context) ([]DueFollowup, error) {
	var out []DueFollowup
	err := s.db.WithContext(ctx).Model(&Followup{}).Distinct("campaign_id", "kind").
		Where("status = 'pending' AND due_at <= ?", s.now()).Scan(&out).Error
	return out, err
}

// ClaimFollowups leases due follow-ups of one kind, like Claim does
// invitations: consent is checked again, a reminder whose guest no longer
// says yes is suppressed, and each email's links are minted (links.go).
func (s *Store) ClaimFollowups(ctx context.Context, campaignID int64, kind string, o ClaimOptions) ([]Claim, error) {
	var out []Claim
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var c Campaign
		if err := tx.Take(&c, campaignID).Error; err != nil {
			return notFound(err, "campaign", campaignID)
		}
		now := s.now()
		if c.Status == StatusCancelled {
			return tx.Model(&Followup{}).Where("campaign_id = ? AND status = 'pending'", campaignID).
				Updates(map[string]any{"status": InvSuppressed, "status_reason": "campaign cancelled", "updated_at": now}).Error
		}
		if c.Status == StatusPaused {
			return nil
		}
		if err := tx.Exec(`UPDATE followups SET status = 'suppressed', status_reason = 'no consent, or no longer coming', updated_at = ?
			WHERE campaign_id = ? AND kind = ? AND status = 'pending' AND (customer_id IN
			(SELECT id FROM customers WHERE consent_state <> 'subscribed') OR (kind IN ('reminder', 'update', 'seat') AND invitation_id IN
			(SELECT id FROM invitations WHERE campaign_id = ? AND rsvp NOT IN ('yes'))))`, now, campaignID, kind, campaignID).Error; err != nil {
			return err
		}
		var rows []Followup
		set := "status = 'sending', lease_owner = ?, lease_until = ?, batch_id = ?, cancel_by = ?, attempts = attempts + 1, updated_at = ?"
		args := []any{o.Worker, now.Add(o.Lease), o.BatchID, o.CancelBy, now}
		var q string
		if s.dialect == config.Postgres {
			q = `WITH locked AS (SELECT id FROM followups WHERE campaign_id = ? AND kind = ? AND status = 'pending' AND due_at <= ?
				ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED)
				UPDATE followups SET ` + set + ` FROM locked WHERE followups.id = locked.id RETURNING followups.*`
			args = append([]any{campaignID, kind, now, o.Limit}, args...)
		} else {
			q = `UPDATE followups SET ` + set + ` WHERE id IN (SELECT id FROM followups WHERE campaign_id = ? AND kind = ?
				AND status = 'pending' AND due_at <= ? ORDER BY id LIMIT ?) RETURNING *`
			args = append(args, campaignID, kind, now, o.Limit)
		}
		if err := tx.Raw(q, args...).Scan(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
		invIDs := make([]int64, len(rows))
		for i, r := range rows {
			invIDs[i] = r.InvitationID
		}
		var invs []Invitation
		if err := tx.Where("id IN ?", invIDs).Find(&invs).Error; err != nil {
			return err
		}
		byID := map[int64]Invitation{}
		var custIDs []int64
		for _, inv := range invs {
			byID[inv.ID] = inv
			custIDs = append(custIDs, inv.CustomerID)
		}
		var names []struct {
			ID   int64
			Name string
		}
		if err := tx.Model(&Customer{}).Select("id, name").Where("id IN ?", custIDs).Scan(&names).Error; err != nil {
			return err
		}
		nameOf := map[int64]string{}
		for _, n := range names {
			nameOf[n.ID] = n.Name
		}
		kinds := []string{TokenUnsubscribe, TokenRSVP, TokenCheckin}
		if kind == FollowSurvey {
			kinds = []string{TokenUnsubscribe, TokenSurvey}
		}
		links, err := mintLinks(tx, invIDs, kinds, now) // invIDs follow rows
		if err != nil {
			return err
		}
		for i, r := range rows {
			inv := byID[r.InvitationID]
			out = append(out, Claim{Invitation: inv, QueueID: r.ID, Kind: kind, Name: nameOf[inv.CustomerID], Tokens: links[i]})
		}
		return nil
	})
	return out, err
}

// EventChange edits an event's details.
type EventChange struct {
	Venue    *string    `json:"venue"`
	Address  *string    `json:"address"`
	StartsAt *time.Time `json:"starts_at"`
	EndsAt   *time.Time `json:"ends_at"`
	Capacity *int       `json:"capacity"`
}

// UpdateEvent changes an event. A new time or place raises the calendar
// SEQUENCE and sends everyone who said yes an update with the new .ics.
func (s *Store) UpdateEvent(ctx context.Context, id int64, ch EventChange) (*Campaign, error) {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var c Campaign
		if err := tx.Take(&c, id).Error; err != nil {
			return notFound(err, "campaign", id)
		}
		if c.Kind != KindEvent {
			return &Error{Code: EINVALID, Message: "not an event", Fields: map[string]string{"kind": "only events have a time and place"}}
		}
		if c.Status == StatusClosed || c.Status == StatusCancelled {
			return conflictf("a %s event cannot change", c.Status)
		}
		v := Invalid{}
		fields := map[string]any{}
		moved := false
		if ch.Venue != nil && tidy(*ch.Venue) != c.Venue {
			if tidy(*ch.Venue) == "" {
				v.Add("venue", "is required")
			}
			fields["venue"], moved = tidy(*ch.Venue), true
		}
		if ch.Address != nil && strings.TrimSpace(*ch.Address) != c.Address {
			fields["address"], moved = strings.TrimSpace(*ch.Address), true
		}
		start, end := c.StartsAt, c.EndsAt
		if ch.StartsAt != nil && (start == nil || !ch.StartsAt.Equal(*start)) {
			start, moved = utcPtr(ch.StartsAt), true
			fields["starts_at"] = start
		}
		if ch.EndsAt != nil && (end == nil || !ch.EndsAt.Equal(*end)) {
			end, moved = utcPtr(ch.EndsAt), true
			fields["ends_at"] = end
		}
		if start != nil && end != nil && !end.After(*start) {
			v.Add("ends_at", "must be after starts_at")
		}
		if ch.Capacity != nil {
			if *ch.Capacity < 1 {
				v.Add("capacity", "must be at least 1")
			}
			fields["capacity"] = *ch.Capacity
		}
		if err := v.Err(); err != nil {
			return err
		}
		if len(fields) == 0 {
			return nil
		}
		if moved {
			fields["ics_sequence"] = gorm.Expr("ics_sequence + 1")
		}
		if err := s.updateCampaign(tx, id, fields); err != nil {
			return err
		}
		if ch.Capacity != nil && *ch.Capacity > c.Capacity {
			c.Capacity = *ch.Capacity
			promoted, err := s.promoteWaitlist(tx, &c)
			if err != nil {
				return err
			}
			if err := s.enqueueSeats(tx, c.ID, promoted); err != nil {
				return err
			}
		}
		if moved && c.Runs > 0 {
			_, err := s.enqueueFollowups(tx, c.ID, FollowUpdate, fmt.Sprintf("update:%d", c.ICSSequence+1), s.now(), "rsvp = ?", RSVPYes)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.Campaign(ctx, id)
}

// enqueueSeats tells those just promoted from the waitlist.
func (s *Store) enqueueSeats(tx *gorm.DB, campaignID int64, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	if s.dialect == config.Postgres {
		_, err := tx.Statement.ConnPool.ExecContext(tx.Statement.Context, seatNoticesSQL, s.seatNoticeArgs(campaignID, ids)...)
		return err
	}
	_, err := s.enqueueFollowups(tx, campaignID, FollowSeat, "seat:"+fmt.Sprint(s.now().UnixNano()), s.now(), "id IN ?", ids)
	return err
}

// seatNoticesSQL is enqueueFollowups of seat notices for a list of
// invitations, as one PostgreSQL statement (seatNoticeArgs), so that a
// pgx batch can carry it too.
const seatNoticesSQL = `INSERT INTO followups (campaign_id, invitation_id, customer_id, email, kind, dedupe_key, due_at, status,
	uncertain, attempts, status_reason, created_at, updated_at)
	SELECT campaign_id, id, customer_id, email, $3, $4, $5, 'pending', false, 0, '', $5, $5
	FROM invitations WHERE campaign_id = $1 AND NOT holdout AND id = ANY($2) ON CONFLICT DO NOTHING`

func (s *Store) seatNoticeArgs(campaignID int64, ids []int64) []any {
	now := s.now()
	return []any{campaignID, ids, FollowSeat, "seat:" + fmt.Sprint(now.UnixNano()), now}
}

// ShortDuration writes an offset as people write it: 48h, 1h30m, 90s.
func ShortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

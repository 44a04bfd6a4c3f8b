package campaigns

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// transitions are the legal moves of the campaign state machine. Anything
// else is a conflict.
var transitions = map[Status][]Status{
	StatusDraft:     {StatusScheduled, StatusCancelled},
	StatusScheduled: {StatusSending, StatusDraft, StatusPaused, StatusCancelled, StatusMissed},
	StatusSending:   {StatusSent, StatusPaused, StatusCancelled, StatusScheduled},
	StatusPaused:    {StatusSending, StatusScheduled, StatusCancelled},
	StatusMissed:    {StatusScheduled, StatusCancelled},
	StatusSent:      {StatusClosed, StatusScheduled}, // and cancelled while its emails can be recalled: Cancel
	StatusClosed:    {},
	StatusCancelled: {},
}

// CanTransition reports whether a campaign may move from one status to another.
func CanTransition(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// transition moves a campaign from one of froms to to with a conditional
// UPDATE: when several processes race, exactly one wins (true).
func (s *Store) transition(tx *gorm.DB, id int64, froms []Status, to Status, fields map[string]any) (bool, error) {
	if fields == nil {
		fields = map[string]any{}
	}
	fields["status"] = to
	fields["updated_at"] = s.now()
	if _, ok := fields["status_note"]; !ok {
		fields["status_note"] = ""
	}
	res := tx.Model(&Campaign{}).Where("id = ? AND status IN ?", id, froms).Updates(fields)
	return res.RowsAffected == 1, res.Error
}

func conflictf(format string, args ...any) error { return Errorf(ECONFLICT, format, args...) }

// ScheduleInput says when a campaign goes out: once at SendAt (in the
// campaign's zone when it has no offset) or on a recurring cron spec.
type ScheduleInput struct {
	SendAt *time.Time `json:"send_at"`
	Cron   string     `json:"cron"`
	Now    bool       `json:"now"` // send as soon as possible
}

// ParseLocalTime reads "2026-12-08T09:00" (or with seconds, or a full RFC
// 3339 time) as a wall-clock time in loc: how a coordinator types a time.
func ParseLocalTime(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time like 2026-12-08T09:00", s)
}

// Schedule sets when a draft (or missed, or paused) campaign goes out.
func (s *Store) Schedule(ctx context.Context, id int64, in ScheduleInput) (*Campaign, error) {
	c, err := s.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	v := Invalid{}
	now := s.now()
	fields := map[string]any{}
	switch {
	case in.Cron != "" && (in.SendAt != nil || in.Now):
		v.Add("cron", "give either send_at or cron, not both")
	case in.Cron != "":
		next, err := nextCronRun(in.Cron, c.Location(), now)
		if err != nil {
			v.Add("cron", "is not a cron spec such as \"0 9 1 * *\" (9:00 on the 1st of each month): %v", err)
			break
		}
		fields["cron_spec"], fields["send_at"] = strings.TrimSpace(in.Cron), next
	case in.Now:
		fields["cron_spec"], fields["send_at"] = "", now
	case in.SendAt != nil:
		if in.SendAt.Before(now.Add(-time.Minute)) {
			v.Add("send_at", "is in the past")
		}
		fields["cron_spec"], fields["send_at"] = "", in.SendAt.UTC()
	default:
		v.Add("send_at", "is required: a time (RFC 3339), or give cron")
	}
	if c.Kind == KindEvent && c.StartsAt != nil && in.Cron != "" {
		v.Add("cron", "an event happens once; only gift campaigns can recur")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if c.Kind == KindGift && c.Fulfilment == "codes" {
		if err := s.checkGiftCodes(ctx, c); err != nil {
			return nil, err
		}
	}
	if c.Status == StatusPaused && c.Runs > 0 && !c.Standing() {
		return nil, startedOneOff()
	}
	fields["status"], fields["status_note"], fields["updated_at"] = StatusScheduled, "", now
	// A one-off campaign that has started keeps its frozen audience:
	// scheduled again, its next start would freeze a second one (a new
	// run, newly qualified customers added, another holdout). The
	// condition is in the UPDATE too, against a start in between.
	res := s.db.WithContext(ctx).Model(&Campaign{}).
		Where("id = ? AND status IN ? AND NOT (status = ? AND runs > 0 AND cron_spec = '')",
			id, []Status{StatusDraft, StatusMissed, StatusPaused}, StatusPaused).
		Updates(fields)
	if res.Error != nil {
		return nil, res.Error
	}
	if res.RowsAffected != 1 {
		if cur, err := s.Campaign(ctx, id); err == nil && cur.Status == StatusPaused && cur.Runs > 0 && !cur.Standing() {
			return nil, startedOneOff()
		}
		return nil, conflictf("a %s campaign cannot be scheduled", c.Status)
	}
	return s.Campaign(ctx, id)
}

// startedOneOff is the conflict of scheduling a one-off campaign again
// once it has started sending.
func startedOneOff() error {
	return conflictf("this campaign has already started sending: resume it to send the rest (scheduling it again would freeze its audience a second time)")
}

// checkGiftCodes refuses a code-fulfilled gift whose pool cannot cover its
// audience (less the holdout), saying how many codes are missing.
func (s *Store) checkGiftCodes(ctx context.Context, c *Campaign) error {
	p, err := s.PreviewAudience(ctx, c.Filter(), 1)
	if err != nil {
		return err
	}
	need := p.Count - holdoutSize(p.Count, c.HoldoutPercent)
	var have int64
	if err := s.db.WithContext(ctx).Model(&GiftCode{}).Where("campaign_id = ? AND invitation_id IS NULL", c.ID).Count(&have).Error; err != nil {
		return err
	}
	if have < need {
		return &Error{Code: ECONFLICT, Message: fmt.Sprintf("not enough gift codes: %d recipients, %d codes available; add %d more", need, have, need-have),
			Fields: map[string]string{"gift_codes": fmt.Sprintf("%d missing", need-have)}}
	}
	return nil
}

// Pause stops sending after the batch in flight; nothing sent is resent.
func (s *Store) Pause(ctx context.Context, id int64) (*Campaign, error) {
	return s.move(ctx, id, []Status{StatusScheduled, StatusSending}, StatusPaused, "paused")
}

// Resume continues a paused campaign where it stopped.
func (s *Store) Resume(ctx context.Context, id int64) (*Campaign, error) {
	c, err := s.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	to := StatusSending
	if c.Runs == 0 || c.Standing() {
		// Never started, or between runs: back to waiting for its time.
		to = StatusScheduled
	}
	return s.move(ctx, id, []Status{StatusPaused}, to, "resumed")
}

// Cancel stops a campaign for good; invitations not yet sent never go.
// Emails already handed to the mail service ahead of their send time are
// recalled by the dispatcher while they can be (recall.go), so a campaign
// marked sent can still be cancelled until its last such email's cancel
// deadline.
func (s *Store) Cancel(ctx context.Context, id int64) (*Campaign, error) {
	c, err := s.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	now := s.now()
	// One conditional UPDATE: a recall window that closes meanwhile, or a
	// concurrent move, leaves the campaign as it is.
	res := s.db.WithContext(ctx).Model(&Campaign{}).
		Where("id = ? AND (status IN ? OR (status = ? AND EXISTS (SELECT 1 FROM invitations WHERE campaign_id = ? AND "+recallableRows+")))",
			id, []Status{StatusDraft, StatusScheduled, StatusSending, StatusPaused, StatusMissed}, StatusSent, id, now).
		Updates(map[string]any{"status": StatusCancelled, "status_note": "", "updated_at": now})
	if res.Error != nil {
		return nil, res.Error
	}
	if res.RowsAffected != 1 {
		if c.Status == StatusSent {
			return nil, conflictf("a sent campaign cannot be cancelled: its emails have gone out or can no longer be recalled")
		}
		return nil, conflictf("a %s campaign cannot be cancelled", c.Status)
	}
	return s.Campaign(ctx, id)
}

// CloseCampaign ends a sent campaign (no more RSVPs, reminders or runs).
func (s *Store) CloseCampaign(ctx context.Context, id int64) (*Campaign, error) {
	return s.move(ctx, id, []Status{StatusSent}, StatusClosed, "closed")
}

// Unschedule returns a scheduled campaign to draft for editing.
func (s *Store) Unschedule(ctx context.Context, id int64) (*Campaign, error) {
	return s.move(ctx, id, []Status{StatusScheduled}, StatusDraft, "unscheduled")
}

func (s *Store) move(ctx context.Context, id int64, from []Status, to Status, verb string) (*Campaign, error) {
	c, err := s.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	ok, err := s.transition(s.db.WithContext(ctx), id, from, to, nil)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, conflictf("a %s campaign cannot be %s", c.Status, verb)
	}
	return s.Campaign(ctx, id)
}

// MarkMissed moves scheduled campaigns whose time passed more than
// lateness ago to missed, for a coordinator to confirm or cancel, instead
// of going out silently late. It returns how many it moved.
func (s *Store) MarkMissed(ctx context.Context, lateness time.Duration) (int64, error) {
	cut := s.now().Add(-lateness)
	res := s.db.WithContext(ctx).Model(&Campaign{}).
		Where("status = ? AND send_at < ?", StatusScheduled, cut).
		Updates(map[string]any{"status": StatusMissed, "updated_at": s.now(),
			"status_note": "its send time passed while no worker was running; confirm to send now, or cancel"})
	return res.RowsAffected, res.Error
}

// DueCampaigns lists scheduled campaigns whose send time is within lead of now.
func (s *Store) DueCampaigns(ctx context.Context, lead time.Duration) ([]Campaign, error) {
	var cs []Campaign
	err := s.db.WithContext(ctx).Where("status = ? AND send_at <= ?", StatusScheduled, s.now().Add(lead)).
		Order("send_at").Find(&cs).Error
	return cs, err
}

// SendingCampaigns lists campaigns with invitations going out.
func (s *Store) SendingCampaigns(ctx context.Context) ([]Campaign, error) {
	var cs []Campaign
	err := s.db.WithContext(ctx).Where("status = ?", StatusSending).Order("id").Find(&cs).Error
	return cs, err
}

// PauseWithNote pauses a campaign and says why on its page.
func (s *Store) PauseWithNote(ctx context.Context, id int64, note string) (bool, error) {
	return s.transition(s.db.WithContext(ctx), id, []Status{StatusScheduled, StatusSending}, StatusPaused,
		map[string]any{"status_note": truncate(note, 500)})
}

package campaigns

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"gorm.io/gorm"
)

// Kind is what a campaign offers.
type Kind string

const (
	KindEvent Kind = "event"
	KindGift  Kind = "gift"
)

// Status is where a campaign is in its life.
type Status string

const (
	StatusDraft     Status = "draft"
	StatusScheduled Status = "scheduled"
	StatusSending   Status = "sending"
	StatusSent      Status = "sent"
	StatusClosed    Status = "closed"
	StatusCancelled Status = "cancelled"
	StatusPaused    Status = "paused"
	StatusMissed    Status = "missed"
)

// Campaign is an event invitation or a gift, sent to a frozen audience.
type Campaign struct {
	ID              int64      `json:"id"`
	Kind            Kind       `json:"kind"`
	Name            string     `json:"name"`
	Status          Status     `json:"status"`
	StatusNote      string     `json:"status_note,omitempty"`
	TimeZone        string     `json:"time_zone"`
	FilterJSON      string     `json:"-" gorm:"column:filter"`
	HoldoutPercent  int        `json:"holdout_percent"`
	HoldoutSeed     int64      `json:"holdout_seed"`
	AttributionDays int        `json:"attribution_days"`
	Subject         string     `json:"subject"`
	Message         string     `json:"message"`
	Venue           string     `json:"-"`
	Address         string     `json:"-"`
	StartsAt        *time.Time `json:"-"`
	EndsAt          *time.Time `json:"-"`
	Capacity        int        `json:"-"`
	GuestsPerInvite int        `json:"-"`
	RSVPDeadline    *time.Time `json:"-" gorm:"column:rsvp_deadline"`
	ICSSequence     int        `json:"-" gorm:"column:ics_sequence"`
	SeatsTaken      int64      `json:"-"` // 1 + guests of every yes; changed only under the event's row lock
	GiftType        string     `json:"-"`
	FaceValueCents  int64      `json:"-"`
	UnitCostCents   int64      `json:"-"`
	Fulfilment      string     `json:"-"`
	SendAt          *time.Time `json:"send_at"`
	CronSpec        string     `json:"cron,omitempty"`
	Rules           string     `json:"-"` // JSON []Rule; empty: DefaultRules
	Reminders       string     `json:"-"` // JSON ["48h"]: reminder offsets before the event
	SurveyAfter     string     `json:"-"` // "next-morning" or a duration after the event ends
	Runs            int        `json:"runs"`
	LastRunAt       *time.Time `json:"last_run_at,omitempty"`
	CreatedBy       string     `json:"created_by"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
}

// Filter decodes the campaign's audience filter.
func (c *Campaign) Filter() Filter {
	var f Filter
	_ = json.Unmarshal([]byte(c.FilterJSON), &f)
	return f
}

// Location is the campaign's time zone (UTC if it was somehow lost).
func (c *Campaign) Location() *time.Location {
	return Zone(c.TimeZone)
}

// zones keeps loaded time zones: time.LoadLocation reads and parses the
// zone file on every call, which was 9% of an RSVP request's CPU.
var zones sync.Map // name → *time.Location

// Zone is the named IANA time zone, loaded once; UTC if it is unknown.
func Zone(name string) *time.Location {
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC
	}
	zones.Store(name, loc)
	return loc
}

// Standing reports whether the campaign recurs on a cron spec.
func (c *Campaign) Standing() bool { return c.CronSpec != "" }

// EventFields are what an event campaign adds.
type EventFields struct {
	Venue           string     `json:"venue"`
	Address         string     `json:"address"`
	StartsAt        *time.Time `json:"starts_at"`
	EndsAt          *time.Time `json:"ends_at"`
	Capacity        int        `json:"capacity"`
	GuestsPerInvite int        `json:"guests_per_invite"`
	RSVPDeadline    *time.Time `json:"rsvp_deadline,omitempty"`
}

// GiftFields are what a gift campaign adds.
type GiftFields struct {
	Type           string `json:"type"`
	FaceValueCents int64  `json:"face_value_cents"`
	UnitCostCents  int64  `json:"unit_cost_cents"`
	// Fulfilment is "codes" (a pool of imported codes, one per recipient)
	// or "manual" (the email says the gift is on its way).
	Fulfilment string `json:"fulfilment,omitempty"`
}

// CampaignInput creates a campaign (the JSON body of POST /api/v1/campaigns).
type CampaignInput struct {
	Kind            Kind         `json:"kind"`
	Name            string       `json:"name"`
	TimeZone        string       `json:"time_zone"`
	Filter          Filter       `json:"filter"`
	HoldoutPercent  int          `json:"holdout_percent"`
	AttributionDays *int         `json:"attribution_days"`
	Subject         string       `json:"subject"`
	Message         string       `json:"message"`
	Event           *EventFields `json:"event,omitempty"`
	Gift            *GiftFields  `json:"gift,omitempty"`
	// Reminders are how long before an event reminders go to those who
	// said yes, e.g. ["48h", "2h"]; absent means ["48h"], [] means none.
	Reminders *[]string `json:"reminders,omitempty"`
	// Rules replace the default promotion rules for this campaign.
	Rules *[]Rule `json:"rules,omitempty"`
}

// GiftTypes are the gifts Rapport knows how to describe.
var GiftTypes = map[string]string{
	"gift_card":    "Gift card",
	"free_upgrade": "Free service upgrade",
	"merchandise":  "Merchandise",
	"voucher":      "Voucher",
}

// validate checks the input and names each bad field.
func (in *CampaignInput) validate() error {
	v := Invalid{}
	in.Name = tidy(in.Name)
	in.Subject = strings.TrimSpace(in.Subject)
	in.Message = strings.TrimSpace(in.Message)
	if in.Name == "" {
		v.Add("name", "is required")
	} else if len(in.Name) > 200 {
		v.Add("name", "is longer than 200 characters")
	}
	if len(in.Subject) > 200 {
		v.Add("subject", "is longer than 200 characters")
	}
	if len(in.Message) > 5000 {
		v.Add("message", "is longer than 5,000 characters")
	}
	if in.TimeZone == "" {
		v.Add("time_zone", "is required, an IANA zone such as America/Chicago")
	} else if _, err := time.LoadLocation(in.TimeZone); err != nil || in.TimeZone == "Local" {
		v.Add("time_zone", "%q is not an IANA time zone such as America/Chicago", in.TimeZone)
	}
	if err := in.Filter.Validate(); err != nil {
		if e, ok := err.(*Error); ok {
			for f, why := range e.Fields {
				v.Add("filter."+f, "%s", why)
			}
		}
	}
	if in.HoldoutPercent < 0 || in.HoldoutPercent > 50 {
		v.Add("holdout_percent", "must be 0-50")
	}
	if in.AttributionDays != nil && (*in.AttributionDays < 1 || *in.AttributionDays > 730) {
		v.Add("attribution_days", "must be 1-730")
	}
	switch in.Kind {
	case KindEvent:
		e := in.Event
		if e == nil {
			v.Add("event", "is required for an event campaign")
			break
		}
		e.Venue, e.Address = tidy(e.Venue), strings.TrimSpace(e.Address)
		if e.Venue == "" {
			v.Add("event.venue", "is required")
		}
		if e.StartsAt == nil {
			v.Add("event.starts_at", "is required (RFC 3339, e.g. 2026-12-10T18:00:00-06:00)")
		}
		if e.EndsAt == nil {
			v.Add("event.ends_at", "is required (RFC 3339)")
		}
		if e.StartsAt != nil && e.EndsAt != nil && !e.EndsAt.After(*e.StartsAt) {
			v.Add("event.ends_at", "must be after starts_at")
		}
		if e.Capacity < 1 {
			v.Add("event.capacity", "must be at least 1")
		} else if e.Capacity > 100000 {
			v.Add("event.capacity", "must be at most 100,000")
		}
		if e.GuestsPerInvite < 0 || e.GuestsPerInvite > 10 {
			v.Add("event.guests_per_invite", "must be 0-10")
		}
		if e.RSVPDeadline != nil && e.StartsAt != nil && e.RSVPDeadline.After(*e.StartsAt) {
			v.Add("event.rsvp_deadline", "must not be after the event starts")
		}
		if in.Gift != nil {
			v.Add("gift", "must be absent for an event campaign")
		}
		if in.Reminders != nil {
			for i, r := range *in.Reminders {
				if d, err := time.ParseDuration(strings.TrimSpace(r)); err != nil || d < time.Minute || d > 30*24*time.Hour {
					v.Add("reminders", "entry %d (%q) must be a duration before the event such as 48h or 2h", i+1, r)
				}
			}
		}
	case KindGift:
		g := in.Gift
		if g == nil {
			v.Add("gift", "is required for a gift campaign")
			break
		}
		if _, ok := GiftTypes[g.Type]; !ok {
			v.Add("gift.type", "must be one of gift_card, free_upgrade, merchandise, voucher")
		}
		if g.FaceValueCents < 0 {
			v.Add("gift.face_value_cents", "must not be negative")
		}
		if g.UnitCostCents < 0 {
			v.Add("gift.unit_cost_cents", "must not be negative")
		}
		switch g.Fulfilment {
		case "":
			g.Fulfilment = "manual"
			if g.Type == "gift_card" {
				g.Fulfilment = "codes"
			}
		case "codes", "manual":
		default:
			v.Add("gift.fulfilment", "must be codes or manual")
		}
		if in.Event != nil {
			v.Add("event", "must be absent for a gift campaign")
		}
	default:
		v.Add("kind", "must be event or gift")
	}
	if in.Rules != nil {
		for i, r := range *in.Rules {
			if err := r.Validate(); err != nil {
				for f, why := range err.(*Error).Fields {
					v.Add(fmt.Sprintf("rules.%d.%s", i, f), "%s", why)
				}
			}
		}
	}
	return v.Err()
}

// CreateCampaign stores a draft campaign.
func (s *Store) CreateCampaign(ctx context.Context, in CampaignInput, by string) (*Campaign, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	fj, _ := json.Marshal(in.Filter)
	now := s.now()
	c := &Campaign{Kind: in.Kind, Name: in.Name, Status: StatusDraft, TimeZone: in.TimeZone, FilterJSON: string(fj),
		HoldoutPercent: in.HoldoutPercent, HoldoutSeed: rand.Int64N(1 << 53), AttributionDays: 90,
		Subject: in.Subject, Message: in.Message, CreatedBy: by, CreatedAt: now, UpdatedAt: now, Reminders: `["48h"]`, SurveyAfter: "next-morning"}
	if in.AttributionDays != nil {
		c.AttributionDays = *in.AttributionDays
	}
	if in.Reminders != nil {
		rj, _ := json.Marshal(*in.Reminders)
		c.Reminders = string(rj)
	}
	if in.Rules != nil {
		rj, _ := json.Marshal(*in.Rules)
		c.Rules = string(rj)
	}
	if e := in.Event; e != nil {
		c.Venue, c.Address, c.Capacity, c.GuestsPerInvite = e.Venue, e.Address, e.Capacity, e.GuestsPerInvite
		c.StartsAt, c.EndsAt, c.RSVPDeadline = utcPtr(e.StartsAt), utcPtr(e.EndsAt), utcPtr(e.RSVPDeadline)
	}
	if g := in.Gift; g != nil {
		c.GiftType, c.FaceValueCents, c.UnitCostCents, c.Fulfilment = g.Type, g.FaceValueCents, g.UnitCostCents, g.Fulfilment
	}
	if err := s.db.WithContext(ctx).Create(c).Error; err != nil {
		return nil, err
	}
	return c, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// Campaign returns one campaign.
func (s *Store) Campaign(ctx context.Context, id int64) (*Campaign, error) {
	var c Campaign
	if err := s.db.WithContext(ctx).Take(&c, id).Error; err != nil {
		return nil, notFound(err, "campaign", id)
	}
	return &c, nil
}

// Campaigns lists campaigns, newest first, optionally of some statuses.
func (s *Store) Campaigns(ctx context.Context, statuses ...Status) ([]Campaign, error) {
	var cs []Campaign
	q := s.db.WithContext(ctx).Order("id DESC")
	if len(statuses) > 0 {
		q = q.Where("status IN ?", statuses)
	}
	err := q.Limit(500).Find(&cs).Error
	return cs, err
}

// Funnel counts a campaign's invitations at each stage.
type Funnel struct {
	Audience   int64 `json:"audience"`
	Holdout    int64 `json:"holdout"`
	Pending    int64 `json:"pending"`
	Sent       int64 `json:"sent"`
	Delivered  int64 `json:"delivered"`
	Failed     int64 `json:"failed"`
	Suppressed int64 `json:"suppressed"`
	Uncertain  int64 `json:"uncertain"`
	RSVPYes    int64 `json:"rsvp_yes"`
	RSVPNo     int64 `json:"rsvp_no"`
	Waitlisted int64 `json:"waitlisted"`
	Attended   int64 `json:"attended"`
	NoShow     int64 `json:"no_show"`
	Promoted   int64 `json:"promoted"`
}

// Funnel counts in one pass over the campaign's invitations. "sent"
// includes those since delivered, as a funnel does.
func (s *Store) Funnel(ctx context.Context, c *Campaign) (Funnel, error) {
	var f Funnel
	err := s.db.WithContext(ctx).Model(&Invitation{}).Where("campaign_id = ?", c.ID).Select(`
		count(*) AS audience,
		coalesce(sum(CASE WHEN holdout THEN 1 ELSE 0 END), 0) AS holdout,
		coalesce(sum(CASE WHEN NOT holdout AND status IN ('pending', 'sending') THEN 1 ELSE 0 END), 0) AS pending,
		coalesce(sum(CASE WHEN status IN ('sent', 'delivered') THEN 1 ELSE 0 END), 0) AS sent,
		coalesce(sum(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END), 0) AS delivered,
		coalesce(sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed,
		coalesce(sum(CASE WHEN status = 'suppressed' THEN 1 ELSE 0 END), 0) AS suppressed,
		coalesce(sum(CASE WHEN uncertain THEN 1 ELSE 0 END), 0) AS uncertain,
		coalesce(sum(CASE WHEN rsvp = 'yes' THEN 1 ELSE 0 END), 0) AS rsvp_yes,
		coalesce(sum(CASE WHEN rsvp = 'no' THEN 1 ELSE 0 END), 0) AS rsvp_no,
		coalesce(sum(CASE WHEN rsvp = 'waitlisted' THEN 1 ELSE 0 END), 0) AS waitlisted,
		coalesce(sum(CASE WHEN attended THEN 1 ELSE 0 END), 0) AS attended,
		coalesce(sum(CASE WHEN rsvp = 'yes' AND NOT attended AND ? THEN 1 ELSE 0 END), 0) AS no_show`,
		c.EndsAt != nil && s.now().After(*c.EndsAt)).Scan(&f).Error
	if err != nil {
		return f, err
	}
	src := CampaignSource(c.ID)
	promo, err := promotedBy(s.db.WithContext(ctx), []string{src})
	f.Promoted = promo[src]
	return f, err
}

// CampaignSource is how ledger rows name a campaign.
func CampaignSource(id int64) string { return "campaign:" + itoa(id) }

// cronParser reads standing campaigns' specs: five fields or a descriptor,
// with an optional CRON_TZ= prefix (the campaign's zone otherwise).
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// nextCronRun is the first time after t that spec fires in loc.
func nextCronRun(spec string, loc *time.Location, after time.Time) (time.Time, error) {
	full := spec
	if !strings.HasPrefix(spec, "CRON_TZ=") && !strings.HasPrefix(spec, "TZ=") {
		full = "CRON_TZ=" + loc.String() + " " + spec
	}
	sch, err := cronParser.Parse(full)
	if err != nil {
		return time.Time{}, err
	}
	return sch.Next(after).UTC(), nil
}

// update writes fields of a campaign.
func (s *Store) updateCampaign(tx *gorm.DB, id int64, fields map[string]any) error {
	fields["updated_at"] = s.now()
	return tx.Model(&Campaign{}).Where("id = ?", id).Updates(fields).Error
}

// SetRules replaces a campaign's promotion rules (nil: back to the defaults).
func (s *Store) SetRules(ctx context.Context, id int64, rules []Rule) (*Campaign, error) {
	v := Invalid{}
	for i, r := range rules {
		if err := r.Validate(); err != nil {
			for f, why := range err.(*Error).Fields {
				v.Add(fmt.Sprintf("rules.%d.%s", i, f), "%s", why)
			}
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	raw := ""
	if rules != nil {
		b, _ := json.Marshal(rules)
		raw = string(b)
	}
	c, err := s.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.Status == StatusClosed || c.Status == StatusCancelled {
		return nil, conflictf("a %s campaign's rules cannot change", c.Status)
	}
	if err := s.updateCampaign(s.db.WithContext(ctx), id, map[string]any{"rules": raw}); err != nil {
		return nil, err
	}
	return s.Campaign(ctx, id)
}

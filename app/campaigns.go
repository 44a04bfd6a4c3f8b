package app

import (
	"encoding/csv"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/rapport/rapport/campaigns"
)

// campaignJSON is a campaign as the API shows it.
type campaignJSON struct {
	*campaigns.Campaign
	Filter    campaigns.Filter `json:"filter"`
	Rules     []campaigns.Rule `json:"rules"`
	Reminders []string         `json:"reminders,omitempty"`
	Event     *eventJSON       `json:"event,omitempty"`
	Gift      *giftJSON        `json:"gift,omitempty"`
	Funnel    campaigns.Funnel `json:"funnel"`
	Mailer    string           `json:"mailer,omitempty"`
	Warning   string           `json:"warning,omitempty"`
}

type eventJSON struct {
	campaigns.EventFields
	ICSSequence int `json:"ics_sequence"`
}

type giftJSON struct {
	campaigns.GiftFields
	Codes campaigns.GiftCodeCounts `json:"codes"`
}

func (a *App) campaignView(c *fiber.Ctx, cp *campaigns.Campaign) (campaignJSON, error) {
	ctx := c.UserContext()
	out := campaignJSON{Campaign: cp, Filter: cp.Filter(), Rules: cp.PromotionRules()}
	if cp.Kind == campaigns.KindEvent {
		for _, d := range cp.ReminderOffsets() {
			out.Reminders = append(out.Reminders, campaigns.ShortDuration(d))
		}
		out.Event = &eventJSON{EventFields: campaigns.EventFields{Venue: cp.Venue, Address: cp.Address, StartsAt: cp.StartsAt,
			EndsAt: cp.EndsAt, Capacity: cp.Capacity, GuestsPerInvite: cp.GuestsPerInvite, RSVPDeadline: cp.RSVPDeadline},
			ICSSequence: cp.ICSSequence}
	} else {
		counts, err := a.store.GiftCodeCounts(ctx, cp.ID)
		if err != nil {
			return out, err
		}
		out.Gift = &giftJSON{GiftFields: campaigns.GiftFields{Type: cp.GiftType, FaceValueCents: cp.FaceValueCents,
			UnitCostCents: cp.UnitCostCents, Fulfilment: cp.Fulfilment}, Codes: counts}
	}
	f, err := a.store.Funnel(ctx, cp)
	out.Funnel = f
	return out, err
}

func (a *App) campaignParam(c *fiber.Ctx) (*campaigns.Campaign, error) {
	id, err := idParam(c)
	if err != nil {
		return nil, err
	}
	return a.store.Campaign(c.UserContext(), id)
}

func (a *App) apiCreateCampaign(c *fiber.Ctx) error {
	var in campaigns.CampaignInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	cp, err := a.store.CreateCampaign(c.UserContext(), in, principal(c).Name)
	if err != nil {
		return err
	}
	v, err := a.campaignView(c, cp)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(v)
}

func (a *App) apiListCampaigns(c *fiber.Ctx) error {
	cs, err := a.store.Campaigns(c.UserContext())
	if err != nil {
		return err
	}
	items := make([]campaignJSON, len(cs))
	for i := range cs {
		if items[i], err = a.campaignView(c, &cs[i]); err != nil {
			return err
		}
	}
	return c.JSON(fiber.Map{"items": items})
}

func (a *App) apiCampaign(c *fiber.Ctx) error {
	cp, err := a.campaignParam(c)
	if err != nil {
		return err
	}
	v, err := a.campaignView(c, cp)
	if err != nil {
		return err
	}
	return c.JSON(v)
}

func (a *App) apiSchedule(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	var in campaigns.ScheduleInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	cp, err := a.store.Schedule(c.UserContext(), id, in)
	if err != nil {
		return err
	}
	v, err := a.campaignView(c, cp)
	if err != nil {
		return err
	}
	return c.JSON(v)
}

// apiLifecycle answers POST …/cancel, /pause, /resume, /close.
func (a *App) apiLifecycle(action string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		cp, err := a.lifecycle(c, action)
		if err != nil {
			return err
		}
		v, err := a.campaignView(c, cp)
		if err != nil {
			return err
		}
		return c.JSON(v)
	}
}

func (a *App) lifecycle(c *fiber.Ctx, action string) (*campaigns.Campaign, error) {
	id, err := idParam(c)
	if err != nil {
		return nil, err
	}
	ctx := c.UserContext()
	switch action {
	case "cancel":
		return a.store.Cancel(ctx, id)
	case "pause":
		return a.store.Pause(ctx, id)
	case "resume":
		return a.store.Resume(ctx, id)
	case "close":
		return a.store.CloseCampaign(ctx, id)
	case "unschedule":
		return a.store.Unschedule(ctx, id)
	}
	return nil, campaigns.Errorf(campaigns.ENOTFOUND, "no such action")
}

func (a *App) apiInvitations(c *fiber.Ctx) error {
	cp, err := a.campaignParam(c)
	if err != nil {
		return err
	}
	page := c.QueryInt("page", 1)
	if page < 1 {
		return &campaigns.Error{Code: campaigns.EINVALID, Message: "bad page", Fields: map[string]string{"page": "must be 1 or more"}}
	}
	items, next, err := a.store.Invitations(c.UserContext(), cp.ID, page, c.QueryInt("per_page", 100))
	if err != nil {
		return err
	}
	if items == nil {
		items = []campaigns.Invitation{}
	}
	for i := range items {
		// The contract's statuses are pending|sent|delivered|failed|
		// suppressed. An invitation a worker holds mid-send ("sending"
		// inside) is not known to be sent yet: to the outside it waits.
		if items[i].Status == campaigns.InvSending {
			items[i].Status = campaigns.InvPending
		}
	}
	return c.JSON(fiber.Map{"items": items, "next_page": next})
}

func (a *App) apiGiftCodes(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	var body struct {
		Codes []string `json:"codes"`
	}
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	counts, err := a.store.AddGiftCodes(c.UserContext(), id, body.Codes)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"added": counts.Added, "available": counts.Available})
}

// readCodesCSV reads gift codes from an upload: the "code" column if the
// file has a header naming one, else the first column of every row.
func readCodesCSV(r io.Reader) ([]string, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	var codes []string
	col := 0
	for row := 1; ; row++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &campaigns.Error{Code: campaigns.EINVALID, Message: "the file is not a CSV of codes",
				Fields: map[string]string{"file": "row " + strconv.Itoa(row) + ": " + err.Error()}}
		}
		if row == 1 {
			found := false
			for i, h := range rec {
				if strings.EqualFold(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")), "code") {
					col, found = i, true
				}
			}
			if found {
				continue
			}
			rec[0] = strings.TrimPrefix(rec[0], "\ufeff")
		}
		if col < len(rec) && strings.TrimSpace(rec[col]) != "" {
			codes = append(codes, utils.CopyString(strings.TrimSpace(rec[col])))
		}
	}
	return codes, nil
}

// formTime reads a datetime-local field in the campaign's zone.
func formTime(c *fiber.Ctx, field string, loc *time.Location, v campaigns.Invalid, required bool) *time.Time {
	raw := strings.TrimSpace(c.FormValue(field))
	if raw == "" {
		if required {
			v.Add(field, "is required")
		}
		return nil
	}
	t, err := campaigns.ParseLocalTime(raw, loc)
	if err != nil {
		v.Add(field, "%s", err.Error())
		return nil
	}
	return &t
}

func (a *App) apiUpdateEvent(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	var ch campaigns.EventChange
	if err := decodeJSON(c, &ch); err != nil {
		return err
	}
	cp, err := a.store.UpdateEvent(c.UserContext(), id, ch)
	if err != nil {
		return err
	}
	v, err := a.campaignView(c, cp)
	if err != nil {
		return err
	}
	return c.JSON(v)
}

func (a *App) apiSetRules(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	var body struct {
		Rules []campaigns.Rule `json:"rules"`
	}
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	cp, err := a.store.SetRules(c.UserContext(), id, body.Rules)
	if err != nil {
		return err
	}
	v, err := a.campaignView(c, cp)
	if err != nil {
		return err
	}
	return c.JSON(v)
}

package app

import (
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/rapport/rapport/campaigns"
)

// TimeZones offered in the campaign builder (any IANA zone is accepted).
var TimeZones = []string{"America/New_York", "America/Chicago", "America/Denver", "America/Phoenix",
	"America/Los_Angeles", "America/Anchorage", "Pacific/Honolulu", "America/Toronto", "America/Mexico_City",
	"Europe/London", "Europe/Berlin", "Europe/Paris", "Asia/Tokyo", "Australia/Sydney", "UTC"}

func (a *App) campaignsPage(c *fiber.Ctx) error {
	cs, err := a.store.Campaigns(c.UserContext())
	if err != nil {
		return err
	}
	rows := make([]campaignJSON, len(cs))
	for i := range cs {
		if rows[i], err = a.campaignView(c, &cs[i]); err != nil {
			return err
		}
	}
	return a.render(c, "pages/campaigns", fiber.Map{"Title": "Campaigns", "Campaigns": rows})
}

func (a *App) newCampaignPage(c *fiber.Ctx) error {
	return a.renderBuilder(c, campaignForm{Kind: "event", TimeZone: "America/Chicago", MinSpend: "300",
		Capacity: "40", GuestsPerInvite: "1", HoldoutPercent: "10", Reminders: "48h", AttributionDays: "90", GiftType: "gift_card",
		FaceValue: "10", UnitCost: "10"}, nil)
}

// campaignForm holds the builder's fields as typed, to show them back.
type campaignForm struct {
	Kind, Name, TimeZone, Subject, Message                            string
	MinSpend, MaxSpend, MinLevel, MaxLevel, NotContacted              string
	Metros                                                            []string
	OwnerIDs                                                          []string
	HoldoutPercent, AttributionDays                                   string
	Venue, Address, StartsAt, EndsAt, Capacity, GuestsPerInvite, RSVP string
	Reminders                                                         string
	GiftType, FaceValue, UnitCost, Fulfilment                         string
}

func (a *App) renderBuilder(c *fiber.Ctx, f campaignForm, formErr error) error {
	ctx := c.UserContext()
	metros, err := a.store.Metros(ctx)
	if err != nil {
		return err
	}
	reps, err := a.store.UsersByRole(ctx, campaigns.RoleRep)
	if err != nil {
		return err
	}
	var fields map[string]string
	if e, ok := formErr.(*campaigns.Error); ok {
		fields = e.Fields
		c.Status(fiber.StatusUnprocessableEntity)
	}
	sel := map[string]bool{}
	for _, m := range f.Metros {
		sel[campaigns.MetroKey(m)] = true
	}
	owners := map[string]bool{}
	for _, o := range f.OwnerIDs {
		owners[o] = true
	}
	return a.render(c, "pages/campaign_new", fiber.Map{"Title": "New campaign", "Form": f, "Metros": metros,
		"SelectedMetros": sel, "Reps": reps, "SelectedOwners": owners, "Ladder": campaigns.Ladder,
		"TimeZones": TimeZones, "GiftTypes": campaigns.GiftTypes, "FormError": formErr, "Errors": fields})
}

func formList(c *fiber.Ctx, key string) []string {
	var out []string
	for _, v := range c.Context().PostArgs().PeekMulti(key) {
		if s := strings.TrimSpace(string(v)); s != "" {
			out = append(out, s)
		}
	}
	if mf, err := c.MultipartForm(); err == nil && mf != nil {
		for _, s := range mf.Value[key] {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// createCampaignForm turns the builder form into a CampaignInput; bad
// fields come back on the form, named.
func (a *App) createCampaignForm(c *fiber.Ctx) error {
	v := campaigns.Invalid{}
	f := campaignForm{Kind: c.FormValue("kind"), Name: c.FormValue("name"), TimeZone: c.FormValue("time_zone"),
		Subject: c.FormValue("subject"), Message: c.FormValue("message"), MinSpend: c.FormValue("min_spend"),
		MaxSpend: c.FormValue("max_spend"), MinLevel: c.FormValue("min_level"), MaxLevel: c.FormValue("max_level"),
		NotContacted: c.FormValue("not_contacted_within_days"), Metros: formList(c, "metros"), OwnerIDs: formList(c, "owner_ids"),
		HoldoutPercent: c.FormValue("holdout_percent"), AttributionDays: c.FormValue("attribution_days"),
		Venue: c.FormValue("venue"), Address: c.FormValue("address"), StartsAt: c.FormValue("starts_at"),
		EndsAt: c.FormValue("ends_at"), Capacity: c.FormValue("capacity"), GuestsPerInvite: c.FormValue("guests_per_invite"),
		RSVP: c.FormValue("rsvp_deadline"), GiftType: c.FormValue("gift_type"), FaceValue: c.FormValue("face_value"),
		UnitCost: c.FormValue("unit_cost"), Fulfilment: c.FormValue("fulfilment"), Reminders: c.FormValue("reminders")}
	f = copyForm(f)
	in := campaigns.CampaignInput{Kind: campaigns.Kind(f.Kind), Name: f.Name, TimeZone: f.TimeZone, Subject: f.Subject, Message: f.Message}
	money := func(field, raw string) *int64 {
		if strings.TrimSpace(raw) == "" {
			return nil
		}
		n, err := campaigns.ParseMoney(raw)
		if err != nil {
			v.Add(field, "%s", err.Error())
			return nil
		}
		return &n
	}
	num := func(field, raw string) *int {
		if strings.TrimSpace(raw) == "" {
			return nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(raw))
		if err != nil {
			v.Add(field, "must be a whole number")
			return nil
		}
		return &n
	}
	in.Filter.MinSpendCents, in.Filter.MaxSpendCents = money("min_spend", f.MinSpend), money("max_spend", f.MaxSpend)
	in.Filter.MinLevel, in.Filter.MaxLevel = num("min_level", f.MinLevel), num("max_level", f.MaxLevel)
	in.Filter.NotContactedWithinDays = num("not_contacted_within_days", f.NotContacted)
	in.Filter.Metros = f.Metros
	for _, o := range f.OwnerIDs {
		if id, err := strconv.ParseInt(o, 10, 64); err == nil {
			in.Filter.OwnerIDs = append(in.Filter.OwnerIDs, id)
		}
	}
	if p := num("holdout_percent", f.HoldoutPercent); p != nil {
		in.HoldoutPercent = *p
	}
	in.AttributionDays = num("attribution_days", f.AttributionDays)
	loc := campaigns.Zone(f.TimeZone)
	switch in.Kind {
	case campaigns.KindEvent:
		e := &campaigns.EventFields{Venue: f.Venue, Address: f.Address}
		e.StartsAt = formTime(c, "starts_at", loc, v, true)
		e.EndsAt = formTime(c, "ends_at", loc, v, true)
		e.RSVPDeadline = formTime(c, "rsvp_deadline", loc, v, false)
		if n := num("capacity", f.Capacity); n != nil {
			e.Capacity = *n
		}
		if n := num("guests_per_invite", f.GuestsPerInvite); n != nil {
			e.GuestsPerInvite = *n
		}
		in.Event = e
		rem := []string{}
		for _, r := range strings.FieldsFunc(f.Reminders, func(r rune) bool { return r == ',' || r == ' ' }) {
			rem = append(rem, r)
		}
		in.Reminders = &rem
	case campaigns.KindGift:
		g := &campaigns.GiftFields{Type: f.GiftType, Fulfilment: f.Fulfilment}
		if n := money("face_value", f.FaceValue); n != nil {
			g.FaceValueCents = *n
		}
		if n := money("unit_cost", f.UnitCost); n != nil {
			g.UnitCostCents = *n
		}
		in.Gift = g
	}
	if err := v.Err(); err != nil {
		return a.renderBuilder(c, f, err)
	}
	cp, err := a.store.CreateCampaign(c.UserContext(), in, principal(c).Name)
	if err != nil {
		if campaigns.ErrorCode(err) == campaigns.EINVALID {
			return a.renderBuilder(c, f, formFieldNames(err))
		}
		return err
	}
	return a.redirectWith(c, "/campaigns/"+strconv.FormatInt(cp.ID, 10), "ok",
		"Campaign created as a draft. Check the audience, then schedule it.")
}

// formFieldNames renames API field paths (event.venue) to form fields (venue).
func formFieldNames(err error) error {
	e, ok := err.(*campaigns.Error)
	if !ok {
		return err
	}
	out := &campaigns.Error{Code: e.Code, Message: e.Message, Fields: map[string]string{}}
	for k, why := range e.Fields {
		k = strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(k, "event."), "gift."), "filter.")
		switch k {
		case "min_spend_cents":
			k = "min_spend"
		case "max_spend_cents":
			k = "max_spend"
		case "face_value_cents":
			k = "face_value"
		case "unit_cost_cents":
			k = "unit_cost"
		case "type":
			k = "gift_type"
		}
		out.Fields[k] = why
	}
	return out
}

func copyForm(f campaignForm) campaignForm {
	cp := func(s string) string { return utils.CopyString(s) }
	f.Kind, f.Name, f.TimeZone, f.Subject, f.Message = cp(f.Kind), cp(f.Name), cp(f.TimeZone), cp(f.Subject), cp(f.Message)
	f.MinSpend, f.MaxSpend, f.MinLevel, f.MaxLevel, f.NotContacted = cp(f.MinSpend), cp(f.MaxSpend), cp(f.MinLevel), cp(f.MaxLevel), cp(f.NotContacted)
	f.HoldoutPercent, f.AttributionDays = cp(f.HoldoutPercent), cp(f.AttributionDays)
	f.Venue, f.Address, f.StartsAt, f.EndsAt, f.Capacity, f.GuestsPerInvite, f.RSVP = cp(f.Venue), cp(f.Address), cp(f.StartsAt), cp(f.EndsAt), cp(f.Capacity), cp(f.GuestsPerInvite), cp(f.RSVP)
	f.GiftType, f.FaceValue, f.UnitCost, f.Fulfilment = cp(f.GiftType), cp(f.FaceValue), cp(f.UnitCost), cp(f.Fulfilment)
	f.Reminders = cp(f.Reminders)
	return f
}

func (a *App) campaignPage(c *fiber.Ctx) error {
	cp, err := a.campaignParam(c)
	if err != nil {
		return err
	}
	v, err := a.campaignView(c, cp)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	preview, err := a.store.PreviewAudience(ctx, cp.Filter(), 5)
	if err != nil {
		return err
	}
	invs, _, err := a.store.Invitations(ctx, cp.ID, 1, 25)
	if err != nil {
		return err
	}
	loc := cp.Location()
	local := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.In(loc).Format("Mon Jan 2, 2006 3:04 PM MST")
	}
	defaultSend := time.Now().In(loc).Add(time.Hour).Truncate(time.Hour).Format("2006-01-02T15:04")
	localInput := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.In(loc).Format("2006-01-02T15:04")
	}
	var costs []campaigns.CostLine
	var audit []campaigns.CostAudit
	var roi *campaigns.ROI
	if Allowed(principal(c).Role, PermFinance) {
		if costs, audit, err = a.store.Costs(ctx, cp.ID); err != nil {
			return err
		}
		if roi, err = a.store.CampaignROI(ctx, cp.ID); err != nil {
			return err
		}
	}
	// A sent campaign whose emails the mail service still holds can be
	// cancelled until the last of them can no longer be recalled.
	var recallUntil *time.Time
	if cp.Status == campaigns.StatusSent {
		if recallUntil, err = a.store.RecallableUntil(ctx, cp.ID); err != nil {
			return err
		}
	}
	return a.render(c, "pages/campaign", fiber.Map{"Title": cp.Name, "C": v, "Preview": preview, "RecallUntil": recallUntil,
		"Costs": costs, "CostAudit": audit, "ROI": roi,
		"Invitations": invs, "Local": local, "LocalInput": localInput, "Zone": loc.String(), "DefaultSend": defaultSend,
		"Ladder": campaigns.Ladder, "Triggers": campaigns.Triggers,
		"Can":    func(p string) bool { return Allowed(principal(c).Role, Permission(p)) },
		"Mailer": a.deps.MailerName, "GiftTypes": campaigns.GiftTypes})
}

func (a *App) scheduleForm(c *fiber.Ctx) error {
	cp, err := a.campaignParam(c)
	if err != nil {
		return err
	}
	back := "/campaigns/" + strconv.FormatInt(cp.ID, 10)
	var in campaigns.ScheduleInput
	switch c.FormValue("when") {
	case "now":
		in.Now = true
	case "cron":
		in.Cron = utils.CopyString(strings.TrimSpace(c.FormValue("cron")))
	default:
		t, err := campaigns.ParseLocalTime(c.FormValue("send_at"), cp.Location())
		if err != nil {
			return a.redirectWith(c, back, "error", "Not scheduled: "+err.Error())
		}
		in.SendAt = &t
	}
	cp, err = a.store.Schedule(c.UserContext(), cp.ID, in)
	if err != nil {
		switch campaigns.ErrorCode(err) {
		case campaigns.EINVALID, campaigns.ECONFLICT:
			return a.redirectWith(c, back, "error", "Not scheduled: "+err.Error())
		}
		return err
	}
	msg := "Scheduled for " + cp.SendAt.In(cp.Location()).Format("Mon Jan 2, 2006 3:04 PM MST") + "."
	if cp.CronSpec != "" {
		msg = "Recurring on “" + cp.CronSpec + "”; first run " + cp.SendAt.In(cp.Location()).Format("Mon Jan 2, 2006 3:04 PM MST") + "."
	}
	return a.redirectWith(c, back, "ok", msg)
}

func (a *App) lifecycleForm(action string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := idParam(c)
		if err != nil {
			return err
		}
		back := "/campaigns/" + strconv.FormatInt(id, 10)
		cp, err := a.lifecycle(c, action)
		if err != nil {
			if campaigns.ErrorCode(err) == campaigns.ECONFLICT {
				return a.redirectWith(c, back, "error", err.Error())
			}
			return err
		}
		return a.redirectWith(c, back, "ok", "Campaign "+string(cp.Status)+".")
	}
}

func (a *App) giftCodesUpload(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	back := "/campaigns/" + strconv.FormatInt(id, 10)
	var codes []string
	if fh, err := c.FormFile("file"); err == nil {
		f, err := fh.Open()
		if err != nil {
			return err
		}
		defer f.Close()
		if codes, err = readCodesCSV(f); err != nil {
			return a.redirectWith(c, back, "error", err.Error())
		}
	}
	for _, line := range strings.Split(c.FormValue("codes"), "\n") {
		if s := strings.TrimSpace(line); s != "" {
			codes = append(codes, utils.CopyString(s))
		}
	}
	counts, err := a.store.AddGiftCodes(c.UserContext(), id, codes)
	if err != nil {
		switch campaigns.ErrorCode(err) {
		case campaigns.EINVALID, campaigns.ECONFLICT:
			return a.redirectWith(c, back, "error", "No codes added: "+err.Error())
		}
		return err
	}
	return a.redirectWith(c, back, "ok", strconv.FormatInt(counts.Added, 10)+" codes added; "+
		strconv.FormatInt(counts.Available, 10)+" available.")
}

// updateEventForm edits an event's time and place from its page; guests
// who said yes get the update with a new calendar SEQUENCE.
func (a *App) updateEventForm(c *fiber.Ctx) error {
	cp, err := a.campaignParam(c)
	if err != nil {
		return err
	}
	back := "/campaigns/" + strconv.FormatInt(cp.ID, 10)
	v := campaigns.Invalid{}
	venue, address := utils.CopyString(c.FormValue("venue")), utils.CopyString(c.FormValue("address"))
	ch := campaigns.EventChange{Venue: &venue, Address: &address}
	ch.StartsAt = formTime(c, "starts_at", cp.Location(), v, true)
	ch.EndsAt = formTime(c, "ends_at", cp.Location(), v, true)
	if n, err := strconv.Atoi(strings.TrimSpace(c.FormValue("capacity"))); err == nil {
		ch.Capacity = &n
	} else {
		v.Add("capacity", "must be a whole number")
	}
	if err := v.Err(); err != nil {
		return a.redirectWith(c, back, "error", "Not changed: "+err.Error())
	}
	before := cp.ICSSequence
	cp, err = a.store.UpdateEvent(c.UserContext(), cp.ID, ch)
	if err != nil {
		switch campaigns.ErrorCode(err) {
		case campaigns.EINVALID, campaigns.ECONFLICT:
			return a.redirectWith(c, back, "error", "Not changed: "+err.Error())
		}
		return err
	}
	msg := "Event saved."
	if cp.ICSSequence > before && cp.Runs > 0 {
		msg = "Event saved. Everyone who said yes gets the new time and place, with an updated calendar entry."
	}
	return a.redirectWith(c, back, "ok", msg)
}

// rulesForm saves the campaign's promotion rules from its page.
func (a *App) rulesForm(c *fiber.Ctx) error {
	cp, err := a.campaignParam(c)
	if err != nil {
		return err
	}
	back := "/campaigns/" + strconv.FormatInt(cp.ID, 10) + "#rules"
	if c.FormValue("reset") != "" {
		if _, err := a.store.SetRules(c.UserContext(), cp.ID, nil); err != nil {
			return a.redirectWith(c, back, "error", err.Error())
		}
		return a.redirectWith(c, back, "ok", "Promotion rules back to the defaults.")
	}
	var rules []campaigns.Rule
	for i := 0; ; i++ {
		p := "rule" + strconv.Itoa(i) + "_"
		name := strings.TrimSpace(c.FormValue(p + "name"))
		if name == "" {
			break
		}
		if c.FormValue(p+"off") == "on" {
			continue
		}
		num := func(f string) int {
			n, _ := strconv.Atoi(strings.TrimSpace(c.FormValue(p + f)))
			return n
		}
		rules = append(rules, campaigns.Rule{Name: utils.CopyString(name), Trigger: utils.CopyString(c.FormValue(p + "trigger")),
			AtLeast: campaigns.Level(num("at_least")), Up: num("up"), Cap: campaigns.Level(num("cap")),
			MinCurrent: campaigns.Level(num("min_current"))})
	}
	if rules == nil {
		rules = []campaigns.Rule{}
	}
	if _, err := a.store.SetRules(c.UserContext(), cp.ID, rules); err != nil {
		switch campaigns.ErrorCode(err) {
		case campaigns.EINVALID, campaigns.ECONFLICT:
			return a.redirectWith(c, back, "error", "Rules not saved: "+err.Error())
		}
		return err
	}
	return a.redirectWith(c, back, "ok", "Promotion rules saved.")
}

package app

import (
	"net/mail"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/rapport/rapport/campaigns"
)

// rsvpPage is the public page behind an invitation's link: the event in
// its own zone, and yes / no with guests. It works without JavaScript.
func (a *App) rsvpPage(c *fiber.Ctx) error {
	v, err := a.store.RSVPByToken(c.UserContext(), c.Params("token"))
	if err != nil {
		return err
	}
	return a.renderRSVP(c, v, "", false)
}

// renderRSVP draws the page; note is what the last answer did, and noteOK
// whether it was taken.
func (a *App) renderRSVP(c *fiber.Ctx, v *campaigns.RSVPView, note string, noteOK bool) error {
	cp := &v.Campaign
	closes := ""
	if v.ClosesAt != nil {
		closes = v.ClosesAt.In(cp.Location()).Format("Monday, January 2, 3:04 PM MST")
	}
	inv := &v.Invitation
	guests := make([]guestOption, cp.GuestsPerInvite+1)
	for i := range guests {
		guests[i] = guestOption{N: i, Selected: i == inv.Guests}
	}
	mapURL := ""
	if cp.Address != "" {
		mapURL = "https://www.openstreetmap.org/search?query=" + urlQueryEscape(cp.Address)
	}
	c.Set("Referrer-Policy", "no-referrer") // the URL is the guest's credential
	return a.render(c, "pages/rsvp", fiber.Map{"Title": cp.Name, "V": v, "When": campaigns.FormatWhen(cp),
		"Closes": closes, "Guests": guests, "MapURL": mapURL, "Token": c.Params("token"), "Note": note, "NoteOK": noteOK,
		"First": firstWord(v.Name),
		// Decided here rather than with eq in the template: each call there
		// is a reflect call, and this page is drawn for every RSVP answer.
		"Coming": inv.RSVP == campaigns.RSVPYes, "Waiting": inv.RSVP == campaigns.RSVPWaitlisted,
		"Declined": inv.RSVP == campaigns.RSVPNo, "GuestsPlural": inv.Guests > 1})
}

// guestOption is one choice of the guests select.
type guestOption struct {
	N        int
	Selected bool
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// rsvpAnswer records the form's answer; the page shows the result (and a
// waitlist place) at once.
func (a *App) rsvpAnswer(c *fiber.Ctx) error {
	guests, _ := strconv.Atoi(c.FormValue("guests", "0"))
	res, err := a.store.Answer(c.UserContext(), c.Params("token"), strings.ToLower(c.FormValue("answer")), guests)
	if err != nil {
		switch campaigns.ErrorCode(err) {
		case campaigns.EINVALID, campaigns.ECONFLICT:
			v, verr := a.store.RSVPByToken(c.UserContext(), c.Params("token"))
			if verr != nil {
				return verr
			}
			c.Status(fiber.StatusUnprocessableEntity)
			if campaigns.ErrorCode(err) == campaigns.ECONFLICT {
				c.Status(fiber.StatusConflict)
			}
			return a.renderRSVP(c, v, err.Error(), false)
		}
		return err
	}
	note := "Your answer is saved."
	if !res.Changed {
		note = "That is already your answer; nothing changed."
	}
	return a.renderRSVP(c, res.View, note, true)
}

// rsvpCalendar is the "Add to calendar" file: the same event, under the same
// UID, as the invitation email's attachment.
func (a *App) rsvpCalendar(c *fiber.Ctx) error {
	v, err := a.store.RSVPByToken(c.UserContext(), c.Params("token"))
	if err != nil {
		return err
	}
	from, _ := mail.ParseAddress(a.cfg.MailFrom)
	if from == nil {
		from = &mail.Address{Address: "events@example.com"}
	}
	ics, err := v.Campaign.Calendar(a.baseURL(c), *from)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "text/calendar; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="event.ics"`)
	return c.Send(ics)
}

package campaigns

import (
	"fmt"
	"net/mail"
	"net/url"

	ics "github.com/arran4/golang-ical"
)

// FormatWhen writes an event's time in its own zone, naming the zone.
func FormatWhen(c *Campaign) string {
	if c.StartsAt == nil {
		return ""
	}
	loc := c.Location()
	s := c.StartsAt.In(loc)
	out := s.Format("Monday, January 2, 2006, 3:04 PM")
	if c.EndsAt != nil {
		e := c.EndsAt.In(loc)
		if e.YearDay() == s.YearDay() && e.Year() == s.Year() {
			out += "–" + e.Format("3:04 PM")
		} else {
			out += " – " + e.Format("Monday, January 2, 3:04 PM")
		}
	}
	return out + " " + s.Format("MST") + " (" + loc.String() + ")"
}

// Calendar is the event's .ics. uidSuffix "" gives the event's shared UID
// (the bulk invitation); an invitation's own calendar link passes its id so
// each guest's entry is stable per invitation. SEQUENCE rises when the
// event's time or place changes.
func (c *Campaign) Calendar(baseURL string, organizer mail.Address, uidSuffix string) ([]byte, error) {
	if c.StartsAt == nil || c.EndsAt == nil {
		return nil, fmt.Errorf("campaign %d has no event time", c.ID)
	}
	host := "rapport"
	if u, err := url.Parse(baseURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	uid := fmt.Sprintf("campaign-%d%s@%s", c.ID, uidSuffix, host)
	cal := ics.NewCalendar()
	cal.SetMethod(ics.MethodPublish)
	cal.SetProductId("-//Rapport//Event invitations//EN")
	e := cal.AddEvent(uid)
	e.SetDtStampTime(c.UpdatedAt.UTC())
	e.SetStartAt(c.StartsAt.UTC())
	e.SetEndAt(c.EndsAt.UTC())
	e.SetSequence(c.ICSSequence)
	e.SetSummary(c.Name)
	loc := c.Venue
	if c.Address != "" {
		loc += ", " + c.Address
	}
	e.SetLocation(loc)
	desc := "Local time: " + FormatWhen(c)
	if c.Message != "" {
		desc = c.Message + "\n\n" + desc
	}
	e.SetDescription(desc)
	e.SetOrganizer("mailto:"+organizer.Address, ics.WithCN(organizer.Name))
	return []byte(cal.Serialize()), nil
}

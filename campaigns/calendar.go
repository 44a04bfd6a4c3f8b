package campaigns

import (
	"fmt"
	"net/mail"
	"net/url"
	"strings"

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

// Calendar is the event's .ics. Its UID is one per event wherever the file
// comes from (the invitation email, the RSVP page's "Add to calendar", the
// "event changed" notice), so a guest who uses both gets one entry, and
// SEQUENCE, which rises when the event's time or place changes, updates it.
func (c *Campaign) Calendar(baseURL string, organizer mail.Address) ([]byte, error) {
	if c.StartsAt == nil || c.EndsAt == nil {
		return nil, fmt.Errorf("campaign %d has no event time", c.ID)
	}
	host := "rapport"
	if u, err := url.Parse(baseURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	uid := fmt.Sprintf("campaign-%d@%s", c.ID, host)
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
	if cn := cnParam(organizer.Name); cn != "" {
		// golang-ical backslash-escapes parameter values (CN=Acme\, Inc.\:
		// Events), which RFC 5545 3.1 does not know: a reader splits the name
		// at the comma and takes " Events:mailto:..." as the organizer's
		// address. It writes a property's name as given, so the parameter
		// goes there, already in its RFC form.
		e.AddProperty(ics.ComponentProperty(string(ics.ComponentPropertyOrganizer)+";CN="+cn), "mailto:"+organizer.Address)
	} else {
		e.SetOrganizer("mailto:" + organizer.Address)
	}
	// RFC 5545 3.1: content lines end in CRLF (the library's default is LF).
	return []byte(cal.Serialize(ics.WithNewLineWindows)), nil
}

// cnParam is a display name as an RFC 5545 parameter value: in double
// quotes when it holds , ; or : (the characters that would end it), with
// double quotes and control characters dropped, since a parameter value
// cannot hold them in any form.
func cnParam(name string) string {
	v := strings.Map(func(r rune) rune {
		if r == '"' || (r < 0x20 && r != '\t') || r == 0x7f {
			return -1
		}
		return r
	}, strings.TrimSpace(name))
	if strings.ContainsAny(v, ",;:") {
		return `"` + v + `"`
	}
	return v
}

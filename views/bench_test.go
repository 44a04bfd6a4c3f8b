package views

import (
	"io"
	"testing"
	"time"

	"github.com/rapport/rapport/campaigns"
)

// BenchmarkRenderRSVP draws the public RSVP answer page in the layout, as
// every RSVP answer does (a quarter of a changing answer's CPU in a profile).
func BenchmarkRenderRSVP(b *testing.B) {
	e, err := NewEngine()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Date(2026, 12, 11, 18, 0, 0, 0, time.UTC)
	end := start.Add(3 * time.Hour)
	v := &campaigns.RSVPView{Name: "Ada Lovelace", Open: true, ClosesAt: &start,
		Campaign: campaigns.Campaign{ID: 7, Name: "An evening at the museum", Venue: "Art Museum", Address: "1 Museum Way, Chicago",
			Message: "Join us for the new wing.", StartsAt: &start, EndsAt: &end, GuestsPerInvite: 1, TimeZone: "America/Chicago", Capacity: 100},
		Invitation: campaigns.Invitation{ID: 42, RSVP: campaigns.RSVPYes, Guests: 1}}
	data := map[string]any{"Title": v.Campaign.Name, "V": v, "When": campaigns.FormatWhen(&v.Campaign), "Closes": "Friday, December 11, 12:00 PM CST",
		"Guests": []struct {
			N        int
			Selected bool
		}{{0, false}, {1, true}}, "Coming": true, "NoteOK": true, "MapURL": "https://www.openstreetmap.org/search?query=1+Museum+Way", "Token": "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnop",
		"Note": "Your answer is saved.", "First": "Ada", "Principal": nil, "Path": "/r/abc", "CSRF": "", "Can": func(string) bool { return false }}
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Render(io.Discard, "pages/rsvp", data, "layouts/base"); err != nil {
			b.Fatal(err)
		}
	}
}

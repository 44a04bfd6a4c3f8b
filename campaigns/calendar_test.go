package campaigns_test

import (
	"bytes"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-ical"
	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
)

func calendarEvent() *campaigns.Campaign {
	s := time.Date(2026, 12, 10, 18, 0, 0, 0, campaigns.Zone("America/Chicago"))
	e := s.Add(3 * time.Hour)
	return &campaigns.Campaign{ID: 7, Name: "Art evening", Venue: "Art Institute", TimeZone: "America/Chicago",
		Message: "Dress warmly.\nParking on Monroe.", StartsAt: &s, EndsAt: &e, ICSSequence: 2}
}

// The file is RFC 5545 text: every content line ends in CRLF, long lines
// are folded, and a strict reader gets back the event, its one UID and the
// organizer's name and address even when the name holds , ; : or ".
func TestCalendarIsRFC5545(t *testing.T) {
	for _, tc := range []struct{ name, cn, line string }{
		{"Acme, Inc.: Events", "Acme, Inc.: Events", `ORGANIZER;CN="Acme, Inc.: Events":mailto:events@acme.example`},
		{`The "Events" team; Acme`, "The Events team; Acme", `ORGANIZER;CN="The Events team; Acme":mailto:events@acme.example`},
		{"O'Brien Events", "O'Brien Events", `ORGANIZER;CN=O'Brien Events:mailto:events@acme.example`},
		{"", "", `ORGANIZER:mailto:events@acme.example`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := calendarEvent()
			raw, err := c.Calendar("https://rapport.example/", mail.Address{Name: tc.name, Address: "events@acme.example"})
			require.NoError(t, err)
			text := string(raw)
			require.True(t, strings.HasPrefix(text, "BEGIN:VCALENDAR\r\n"), text)
			require.True(t, strings.HasSuffix(text, "END:VCALENDAR\r\n"), text)
			require.NotContains(t, strings.ReplaceAll(text, "\r\n", ""), "\n", "every line ends in CRLF")
			require.NotContains(t, strings.ReplaceAll(text, "\r\n", ""), "\r", "every line ends in CRLF")
			require.Contains(t, text, "\r\n"+tc.line+"\r\n")

			cal, err := ical.NewDecoder(bytes.NewReader(raw)).Decode()
			require.NoError(t, err)
			evs := cal.Events()
			require.Len(t, evs, 1)
			uid, err := evs[0].Props.Text(ical.PropUID)
			require.NoError(t, err)
			require.Equal(t, "campaign-7@rapport.example", uid)
			org := evs[0].Props.Get(ical.PropOrganizer)
			require.NotNil(t, org)
			require.Equal(t, "mailto:events@acme.example", org.Value)
			require.Equal(t, tc.cn, org.Params.Get(ical.ParamCommonName))
			desc, err := evs[0].Props.Text(ical.PropDescription)
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(desc, "Dress warmly.\nParking on Monroe.\n\nLocal time: "), desc)
			seq := evs[0].Props.Get(ical.PropSequence)
			require.NotNil(t, seq)
			require.Equal(t, "2", seq.Value)
		})
	}
}

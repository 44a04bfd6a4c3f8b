package jobs_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-ical"
	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
	"github.com/rapport/rapport/jobs"
)

// Every email a guest gets has a plain-text part, working personal links,
// the postal address and an unsubscribe link; the calendar file reads back
// in a library that did not write it, at the right time.
func TestEmailsAsARecipientSeesThem(t *testing.T) {
	s := campaignstest.Open(t, campaignstest.SQLite)
	ctx := context.Background()
	seedAudience(t, s, 2)
	c := startedEvent(t, s, 0)
	d := dispatcher(t, s, jobs.NewOutbox(s), jobs.DispatchConfig{})
	require.NoError(t, d.Tick(ctx))
	msgs, err := s.Outbox(ctx, c.ID, 10)
	require.NoError(t, err)
	require.Len(t, msgs, 2)
	m, err := s.OutboxMessage(ctx, msgs[0].ID)
	require.NoError(t, err)

	require.NotEmpty(t, m.TextBody)
	require.NotEmpty(t, m.HTMLBody)
	for _, body := range []string{m.TextBody, m.HTMLBody} {
		require.Contains(t, body, "1 Main St, Chicago IL", "the sender's postal address")
		require.NotRegexp(t, `-[a-z_]+_url-`, body, "every substitution tag is filled")
	}
	links := regexp.MustCompile(`https://rapport\.example\.com/([rusq])/([a-z0-9]+)`).FindAllStringSubmatch(m.TextBody, -1)
	kinds := map[string]string{"r": campaigns.TokenRSVP, "u": campaigns.TokenUnsubscribe, "q": campaigns.TokenCheckin}
	seen := map[string]bool{}
	for _, l := range links {
		tok, err := s.ResolveToken(ctx, kinds[l[1]], l[2])
		require.NoError(t, err, "link /%s/ resolves", l[1])
		require.Equal(t, m.ToEmail, mustCustomerEmail(t, s, tok.CustomerID), "the link is this recipient's")
		seen[l[1]] = true
	}
	require.True(t, seen["r"] && seen["u"] && seen["q"], "RSVP, unsubscribe and check-in links: %v", seen)
	var headers map[string]string
	require.NoError(t, json.Unmarshal([]byte(m.Headers), &headers))
	require.Regexp(t, `^<https://rapport\.example\.com/u/[a-z0-9]+>$`, headers["List-Unsubscribe"])
	require.Equal(t, "List-Unsubscribe=One-Click", headers["List-Unsubscribe-Post"])
	require.Contains(t, m.HTMLBody, "Golf &lt;9 holes&gt;", "the HTML escapes names")
	require.Contains(t, m.TextBody, "Golf <9 holes>", "the text part does not")

	var atts []struct{ Filename, Type, Content string }
	require.NoError(t, json.Unmarshal([]byte(m.Attachments), &atts))
	require.Len(t, atts, 1)
	raw, err := base64.StdEncoding.DecodeString(atts[0].Content)
	require.NoError(t, err)
	cal, err := ical.NewDecoder(bytes.NewReader(raw)).Decode()
	require.NoError(t, err)
	evs := cal.Events()
	require.Len(t, evs, 1)
	start, err := evs[0].DateTimeStart(time.UTC)
	require.NoError(t, err)
	require.True(t, start.Equal(c.StartsAt.Truncate(time.Second)), "DTSTART %s is the event's start %s", start, c.StartsAt)
	loc, _ := time.LoadLocation("America/Chicago")
	require.Equal(t, c.StartsAt.In(loc).Hour(), start.In(loc).Hour(), "the right local hour in Chicago")
	uid, err := evs[0].Props.Text(ical.PropUID)
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("campaign-%d@rapport.example.com", c.ID), uid, "the event's one UID, as on the RSVP page's calendar link")
	require.True(t, strings.HasPrefix(string(raw), "BEGIN:VCALENDAR\r\n"), "RFC 5545 lines end in CRLF")
	summary, err := evs[0].Props.Text(ical.PropSummary)
	require.NoError(t, err)
	require.Equal(t, "Golf <9 holes>", summary)
}

func mustCustomerEmail(t *testing.T, s *campaigns.Store, id int64) string {
	t.Helper()
	c, err := s.Customer(context.Background(), id)
	require.NoError(t, err)
	return c.Email
}

package jobs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
	"github.com/rapport/rapport/jobs"
)

// A guest who said yes gets a reminder two days before, an update with a
// new calendar SEQUENCE when the event moves, and a freed seat is told.
func TestFollowupsGoOutOnceEach(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		seedAudience(t, s, 3)
		c := startedEvent(t, s, 0)
		require.NoError(t, s.DB().Exec("UPDATE campaigns SET capacity = 1 WHERE id = ?", c.ID).Error)
		d := dispatcher(t, s, jobs.NewOutbox(s), jobs.DispatchConfig{})
		require.NoError(t, d.Tick(ctx))
		per := outboxPerRecipient(t, s, c.ID)
		require.Len(t, per, 3)

		// Everyone answers yes: one seat, two wait.
		var tokens []string
		require.NoError(t, s.DB().Raw(`SELECT text_body FROM outbox WHERE campaign_id = ? ORDER BY id`, c.ID).Scan(&tokens).Error)
		var rsvps []string
		for _, body := range tokens {
			i := strings.Index(body, "/r/")
			rsvps = append(rsvps, strings.Fields(body[i+3:])[0])
		}
		for _, tok := range rsvps {
			_, err := s.Answer(ctx, tok, campaigns.RSVPYes, 0)
			require.NoError(t, err)
		}
		// The one with the seat declines: the first in line is promoted and told.
		var seated string
		for _, tok := range rsvps {
			v, err := s.RSVPByToken(ctx, tok)
			require.NoError(t, err)
			if v.Invitation.RSVP == campaigns.RSVPYes {
				seated = tok
			}
		}
		r, err := s.Answer(ctx, seated, campaigns.RSVPNo, 0)
		require.NoError(t, err)
		require.Len(t, r.Promoted, 1)
		require.NoError(t, d.Tick(ctx))
		kinds := outboxKinds(t, s, c.ID)
		require.Equal(t, 1, kinds["seat"])

		// Two days before: one reminder to the one coming; ticks repeat nothing.
		require.NoError(t, s.DB().Exec("UPDATE campaigns SET starts_at = ?, ends_at = ? WHERE id = ?",
			time.Now().UTC().Add(47*time.Hour), time.Now().UTC().Add(50*time.Hour), c.ID).Error)
		require.NoError(t, d.Tick(ctx))
		require.NoError(t, d.Tick(ctx))
		kinds = outboxKinds(t, s, c.ID)
		require.Equal(t, 1, kinds["reminder"])

		// The event moves: the one coming gets an update, SEQUENCE rises.
		before, err := s.Campaign(ctx, c.ID)
		require.NoError(t, err)
		venue := "The Other Hall"
		after, err := s.UpdateEvent(ctx, c.ID, campaigns.EventChange{Venue: &venue})
		require.NoError(t, err)
		require.Equal(t, before.ICSSequence+1, after.ICSSequence)
		require.NoError(t, d.Tick(ctx))
		kinds = outboxKinds(t, s, c.ID)
		require.Equal(t, 1, kinds["update"])
		var att string
		require.NoError(t, s.DB().Raw(`SELECT attachments FROM outbox WHERE campaign_id = ? AND kind = 'update'`, c.ID).Scan(&att).Error)
		require.Contains(t, att, "text/calendar")
		cal, err := after.Calendar("https://x.example", mailFrom(), "")
		require.NoError(t, err)
		require.Contains(t, string(cal), "SEQUENCE:1")
		require.Contains(t, string(cal), "The Other Hall")
	})
}

func outboxKinds(t *testing.T, s *campaigns.Store, campaignID int64) map[string]int {
	t.Helper()
	var rows []struct {
		Kind string
		N    int
	}
	require.NoError(t, s.DB().Raw(`SELECT kind, count(*) AS n FROM outbox WHERE campaign_id = ? GROUP BY kind`, campaignID).Scan(&rows).Error)
	out := map[string]int{}
	for _, r := range rows {
		out[r.Kind] = r.N
	}
	return out
}

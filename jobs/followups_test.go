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
		var states []string
		require.NoError(t, s.DB().Raw(`SELECT status FROM followups WHERE campaign_id = ?`, c.ID).Scan(&states).Error)
		require.Equal(t, []string{"delivered"}, states, "a kept email is settled as delivered")

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
		cal, err := after.Calendar("https://x.example", mailFrom())
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

// After the event, those who came get a one-click 0-10 survey the next
// morning in the event's zone; NPS matches a hand count.
func TestSurveyAfterTheEvent(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		seedAudience(t, s, 12)
		c := startedEvent(t, s, 0)
		d := dispatcher(t, s, jobs.NewOutbox(s), jobs.DispatchConfig{})
		require.NoError(t, d.Tick(ctx))
		invs, _, err := s.Invitations(ctx, c.ID, 1, 100)
		require.NoError(t, err)
		for _, inv := range invs {
			_, err := s.CheckIn(ctx, c.ID, campaigns.CheckinTarget{CustomerID: inv.CustomerID}, nil)
			require.NoError(t, err)
		}
		// The event ended yesterday at 21:00 Chicago time: the survey is due
		// this morning at 9:00 there, which has passed once we move the end back.
		loc, _ := time.LoadLocation("America/Chicago")
		end := time.Now().In(loc).AddDate(0, 0, -2)
		end = time.Date(end.Year(), end.Month(), end.Day(), 21, 0, 0, 0, loc)
		require.NoError(t, s.DB().Exec("UPDATE campaigns SET starts_at = ?, ends_at = ? WHERE id = ?", end.Add(-3*time.Hour).UTC(), end.UTC(), c.ID).Error)
		require.NoError(t, d.Tick(ctx))
		require.NoError(t, d.Tick(ctx))
		require.Equal(t, 12, outboxKinds(t, s, c.ID)["survey"], "one survey per attendee, once")

		var bodies []string
		require.NoError(t, s.DB().Raw(`SELECT text_body FROM outbox WHERE campaign_id = ? AND kind = 'survey' ORDER BY id`, c.ID).Scan(&bodies).Error)
		require.Contains(t, bodies[0], "?score=0")
		require.Contains(t, bodies[0], "?score=10")
		scores := []int{10, 9, 9, 8, 7, 6, 0, 10, 3, 9, 10, 5}
		for i, body := range bodies {
			j := strings.Index(body, "/s/")
			tok := strings.Split(strings.Fields(body[j+3:])[0], "?")[0]
			v, err := s.AnswerSurvey(ctx, tok, &scores[i], nil)
			require.NoError(t, err)
			require.Equal(t, scores[i], *v.Score)
		}
		roi, err := s.CampaignROI(ctx, c.ID)
		require.NoError(t, err)
		// 6 promoters, 4 detractors of 12: 100 x (6 - 4) / 12.
		require.Equal(t, 12, roi.NPSAnswers)
		require.InDelta(t, 100.0*2/12, *roi.NPS, 1e-9)
		det, err := s.Detractors(ctx, nil, true)
		require.NoError(t, err)
		require.Len(t, det, 4)
		require.NoError(t, s.MarkFollowedUp(ctx, det[0].InvitationID, nil, "rep@example.com"))
		det, err = s.Detractors(ctx, nil, true)
		require.NoError(t, err)
		require.Len(t, det, 3)
	})
}

// An event with the reminders ["48h", "2h"] whose guest says yes one hour
// before it starts gets one reminder on the next tick, not one per
// reminder time already passed.
func TestLateYesIsRemindedOnce(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		seedAudience(t, s, 2)
		start := time.Now().Add(time.Hour)
		c, err := s.CreateCampaign(ctx, campaigns.CampaignInput{Kind: campaigns.KindEvent, Name: "Golf",
			TimeZone: "America/Chicago", Filter: campaigns.Filter{Metros: []string{"Chicago"}}, Reminders: &[]string{"48h", "2h"},
			Event: &campaigns.EventFields{Venue: "Lakeside", StartsAt: &start, EndsAt: ptr(start.Add(4 * time.Hour)), Capacity: 40}}, "t")
		require.NoError(t, err)
		_, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true})
		require.NoError(t, err)
		d := dispatcher(t, s, jobs.NewOutbox(s), jobs.DispatchConfig{})
		require.NoError(t, d.Tick(ctx))
		items, _, err := s.Invitations(ctx, c.ID, 1, 10)
		require.NoError(t, err)
		require.NotEmpty(t, items)
		require.NoError(t, s.DB().Exec("UPDATE invitations SET rsvp = 'yes' WHERE id = ?", items[0].ID).Error)
		require.NoError(t, d.Tick(ctx))
		require.NoError(t, d.Tick(ctx))
		msgs, err := s.Outbox(ctx, c.ID, 100)
		require.NoError(t, err)
		reminders := 0
		for _, m := range msgs {
			if m.ToEmail == items[0].Email && m.Kind == campaigns.FollowReminder {
				reminders++
			}
		}
		require.Equal(t, 1, reminders)
	})
}

package jobs_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
	"github.com/rapport/rapport/jobs"
)

// rejectOnce refuses its first request as a whole, naming no recipient,
// as SendGrid does with a 400 for a bad setting or a 413 for a body too
// large; then it sends to the outbox.
type rejectOnce struct {
	*jobs.Outbox
	err  *jobs.RejectedError
	done atomic.Bool
}

func (r *rejectOnce) Send(ctx context.Context, b *jobs.Batch) (string, error) {
	if r.done.CompareAndSwap(false, true) {
		return "", r.err
	}
	return r.Outbox.Send(ctx, b)
}

// A request refused as a whole pauses the campaign and fails nobody: once
// the coordinator fixes the cause and resumes, everyone is sent to once.
func TestRequestRefusedAsAWholePausesAndLosesNobody(t *testing.T) {
	for _, rej := range []*jobs.RejectedError{
		{Status: 400, Message: "The from address does not match a verified Sender Identity."},
		{Status: 413, Message: "Payload Too Large"},
	} {
		t.Run(rej.Message, func(t *testing.T) {
			campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
				ctx := context.Background()
				seedAudience(t, s, 20)
				c := startedEvent(t, s, 0)
				d := dispatcher(t, s, &rejectOnce{Outbox: jobs.NewOutbox(s), err: rej}, jobs.DispatchConfig{BatchSize: 10, Concurrency: 1})
				require.NoError(t, d.Tick(ctx))
				cur, err := s.Campaign(ctx, c.ID)
				require.NoError(t, err)
				require.Equal(t, campaigns.StatusPaused, cur.Status)
				require.Contains(t, cur.StatusNote, rej.Message, "the page says why")
				f, err := s.Funnel(ctx, cur)
				require.NoError(t, err)
				require.Zero(t, f.Failed, "no recipient was at fault")
				require.EqualValues(t, 20, f.Pending)

				_, err = s.Resume(ctx, c.ID)
				require.NoError(t, err)
				require.NoError(t, d.Tick(ctx))
				cur, err = s.Campaign(ctx, c.ID)
				require.NoError(t, err)
				require.Equal(t, campaigns.StatusSent, cur.Status)
				per := outboxPerRecipient(t, s, c.ID)
				require.Len(t, per, 20, "everyone is sent to once the cause is fixed")
				for email, n := range per {
					require.Equal(t, 1, n, email)
				}
			})
		})
	}
}

// rejectReminders refuses every reminder request as a whole (a 413, say).
type rejectReminders struct {
	*jobs.Outbox
	tries atomic.Int64
}

func (r *rejectReminders) Send(ctx context.Context, b *jobs.Batch) (string, error) {
	if b.Kind == campaigns.FollowReminder {
		r.tries.Add(1)
		return "", &jobs.RejectedError{Status: 413, Message: "Payload Too Large"}
	}
	return r.Outbox.Send(ctx, b)
}

// A follow-up of a sent campaign refused as a whole: the campaign cannot
// pause (it is sent), so the reminder fails with the reason, once, instead
// of going back to pending and being sent again on every tick.
func TestFollowupRefusedAsAWholeFailsOnce(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		seedAudience(t, s, 2)
		start := time.Now().Add(time.Hour)
		c, err := s.CreateCampaign(ctx, campaigns.CampaignInput{Kind: campaigns.KindEvent, Name: "Golf",
			TimeZone: "America/Chicago", Filter: campaigns.Filter{Metros: []string{"Chicago"}}, Reminders: &[]string{"2h"},
			Event: &campaigns.EventFields{Venue: "Lakeside", StartsAt: &start, EndsAt: ptr(start.Add(4 * time.Hour)), Capacity: 40}}, "t")
		require.NoError(t, err)
		_, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true})
		require.NoError(t, err)
		m := &rejectReminders{Outbox: jobs.NewOutbox(s)}
		d := dispatcher(t, s, m, jobs.DispatchConfig{})
		require.NoError(t, d.Tick(ctx))
		items, _, err := s.Invitations(ctx, c.ID, 1, 10)
		require.NoError(t, err)
		require.NoError(t, s.DB().Exec("UPDATE invitations SET rsvp = 'yes' WHERE id = ?", items[0].ID).Error)
		for i := 0; i < 5; i++ {
			require.NoError(t, d.Tick(ctx))
		}
		cur, err := s.Campaign(ctx, c.ID)
		require.NoError(t, err)
		var st []string
		require.NoError(t, s.DB().Raw(`SELECT status FROM followups WHERE campaign_id = ?`, c.ID).Scan(&st).Error)
		t.Logf("campaign %s (%q), reminder rows %v, requests made %d", cur.Status, cur.StatusNote, st, m.tries.Load())
		require.EqualValues(t, 1, m.tries.Load(), "a request refused as a whole is not repeated on every tick")
		require.Equal(t, []string{"failed"}, st)
		var reason string
		require.NoError(t, s.DB().Raw(`SELECT status_reason FROM followups WHERE campaign_id = ?`, c.ID).Scan(&reason).Error)
		require.Contains(t, reason, "Payload Too Large")
	})
}

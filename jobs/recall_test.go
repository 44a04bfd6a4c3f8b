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
	"github.com/rapport/rapport/jobs/sendgridfake"
)

// scheduledEvent is an event to the Chicago audience scheduled at sendAt.
func scheduledEvent(t *testing.T, s *campaigns.Store, sendAt time.Time) *campaigns.Campaign {
	t.Helper()
	ctx := context.Background()
	start := time.Now().Add(14 * 24 * time.Hour)
	c, err := s.CreateCampaign(ctx, campaigns.CampaignInput{Kind: campaigns.KindEvent, Name: "Golf",
		TimeZone: "America/Chicago", Filter: campaigns.Filter{Metros: []string{"Chicago"}},
		Event: &campaigns.EventFields{Venue: "Lakeside", StartsAt: &start, EndsAt: ptr(start.Add(4 * time.Hour)), Capacity: 40}}, "t")
	require.NoError(t, err)
	_, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{SendAt: &sendAt})
	require.NoError(t, err)
	return c
}

// requireRecalled checks that every invitation of the campaign that went
// to the mail service was recalled: suppressed with the reason, nothing
// left to deliver at SendGrid.
func requireRecalled(t *testing.T, s *campaigns.Store, fake *sendgridfake.Server, c *campaigns.Campaign, want int) {
	t.Helper()
	ctx := context.Background()
	require.Zero(t, fake.DeliveredCount(), "every email handed over was recalled before its send time")
	items, _, err := s.Invitations(ctx, c.ID, 1, 100)
	require.NoError(t, err)
	recalled := 0
	for _, inv := range items {
		require.NotEqual(t, campaigns.InvSent, inv.Status, inv.Email)
		if inv.Status == campaigns.InvSuppressed && inv.StatusReason == campaigns.RecalledReason {
			recalled++
		}
	}
	require.Equal(t, want, recalled)
	cur, err := s.Campaign(ctx, c.ID)
	require.NoError(t, err)
	f, err := s.Funnel(ctx, cur)
	require.NoError(t, err)
	require.Zero(t, f.Sent)
}

// A coordinator cancels 10 minutes before the send time. The worker
// started the campaign in its 15-minute lead and SendGrid holds every
// email until the send time: the cancel is accepted and the next tick
// recalls them.
func TestCancelBeforeSendTimeRecallsHandedOverEmails(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		fake := sendgridfake.New()
		defer fake.Close()
		seedAudience(t, s, 20)
		c := scheduledEvent(t, s, time.Now().Add(10*time.Minute))
		sg := jobs.NewSendGrid(jobs.SendGridConfig{APIKey: "SG.test", BaseURL: fake.URL})
		d := dispatcher(t, s, sg, jobs.DispatchConfig{BatchSize: 10})
		require.NoError(t, d.Tick(ctx))
		require.Equal(t, 20, fake.DeliveredCount(), "SendGrid holds every email until the send time")
		cur, err := s.Campaign(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, campaigns.StatusSent, cur.Status, "everything is handed over")
		until, err := s.RecallableUntil(ctx, c.ID)
		require.NoError(t, err)
		require.NotNil(t, until, "the page offers to cancel while the emails can be recalled")

		cur, err = s.Cancel(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, campaigns.StatusCancelled, cur.Status)
		require.NoError(t, d.Tick(ctx))
		requireRecalled(t, s, fake, c, 20)
		until, err = s.RecallableUntil(ctx, c.ID)
		require.NoError(t, err)
		require.Nil(t, until)
	})
}

// Once SendGrid can no longer recall the emails (10 minutes before their
// send time), a sent campaign cannot be cancelled, and nothing is recalled.
func TestCancelAfterTheRecallDeadlineIsRefused(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		fake := sendgridfake.New()
		defer fake.Close()
		seedAudience(t, s, 5)
		c := scheduledEvent(t, s, time.Now().Add(10*time.Minute))
		sg := jobs.NewSendGrid(jobs.SendGridConfig{APIKey: "SG.test", BaseURL: fake.URL})
		d := dispatcher(t, s, sg, jobs.DispatchConfig{})
		require.NoError(t, d.Tick(ctx))
		// Sent at now+15m, recallable until now+5m.
		s.SetClock(func() time.Time { return time.Now().Add(6 * time.Minute) })
		_, err := s.Cancel(ctx, c.ID)
		require.Equal(t, campaigns.ECONFLICT, campaigns.ErrorCode(err), "%v", err)
		require.NoError(t, d.Tick(ctx))
		require.Equal(t, 5, fake.DeliveredCount())
		cur, err := s.Campaign(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, campaigns.StatusSent, cur.Status)
	})
}

// A campaign sent through the outbox is delivered at once: there is
// nothing to recall and it cannot be cancelled once sent.
func TestSentOutboxCampaignCannotBeCancelled(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		seedAudience(t, s, 3)
		c := startedEvent(t, s, 0)
		require.NoError(t, dispatcher(t, s, jobs.NewOutbox(s), jobs.DispatchConfig{}).Tick(ctx))
		_, err := s.Cancel(ctx, c.ID)
		require.Equal(t, campaigns.ECONFLICT, campaigns.ErrorCode(err), "%v", err)
		require.Len(t, outboxPerRecipient(t, s, c.ID), 3)
	})
}

// cancelAfter cancels the campaign once n batches were accepted: the
// coordinator cancels in the middle of a large send.
type cancelAfter struct {
	*jobs.SendGrid
	store *campaigns.Store
	n     int64
	sent  atomic.Int64
}

func (m *cancelAfter) Send(ctx context.Context, b *jobs.Batch) (string, error) {
	id, err := m.SendGrid.Send(ctx, b)
	if err == nil && m.sent.Add(1) == m.n {
		if _, cerr := m.store.Cancel(ctx, b.CampaignID); cerr != nil {
			return "", cerr
		}
	}
	return id, err
}

// Cancelled in the middle of a send: the batches SendGrid already took
// are recalled; the rest were never handed over.
func TestCancelMidSendRecallsAcceptedBatches(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		fake := sendgridfake.New()
		defer fake.Close()
		seedAudience(t, s, 20)
		c := startedEvent(t, s, 0)
		m := &cancelAfter{SendGrid: jobs.NewSendGrid(jobs.SendGridConfig{APIKey: "SG.test", BaseURL: fake.URL}), store: s, n: 2}
		d := dispatcher(t, s, m, jobs.DispatchConfig{BatchSize: 5, Concurrency: 1})
		require.NoError(t, d.Tick(ctx))
		// Two batches (each sender starts at a place of its own among the
		// ids, so a batch may end short at the last id).
		handed := fake.DeliveredCount()
		require.Positive(t, handed, "batches were handed over before the cancel")
		require.Less(t, handed, 20, "the cancel stopped the send")
		require.NoError(t, d.Tick(ctx))
		requireRecalled(t, s, fake, c, handed)
		cur, err := s.Campaign(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, campaigns.StatusCancelled, cur.Status)
	})
}

package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
	"github.com/rapport/rapport/jobs"
	"github.com/rapport/rapport/jobs/sendgridfake"
)

func ptr[T any](v T) *T { return &v }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// seedAudience makes n subscribed customers in Chicago and one unsubscribed.
func seedAudience(t *testing.T, s *campaigns.Store, n int) {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	b.WriteString("name,email,metro_area,annual_spend\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "Guest %d,guest%d@example.com,Chicago,500\n", i, i)
	}
	b.WriteString("Gone Away,gone@example.com,Chicago,500\n")
	res, err := s.ImportCustomers(ctx, strings.NewReader(b.String()), campaigns.ImportOptions{Actor: "t"})
	require.NoError(t, err)
	require.EqualValues(t, n+1, res.Inserted)
	page, err := s.ListCustomers(ctx, campaigns.CustomerQuery{Q: "gone@example.com"})
	require.NoError(t, err)
	require.NoError(t, s.SetConsent(ctx, page.Items[0].ID, campaigns.Unsubscribed, "test"))
}

func startedEvent(t *testing.T, s *campaigns.Store, holdout int) *campaigns.Campaign {
	t.Helper()
	ctx := context.Background()
	start := time.Now().Add(14 * 24 * time.Hour)
	c, err := s.CreateCampaign(ctx, campaigns.CampaignInput{Kind: campaigns.KindEvent, Name: "Golf <9 holes>",
		TimeZone: "America/Chicago", HoldoutPercent: holdout, Filter: campaigns.Filter{Metros: []string{"Chicago"}},
		Event: &campaigns.EventFields{Venue: "Lakeside Golf", Address: "1 Lake Shore Dr, Chicago", StartsAt: &start,
			EndsAt: ptr(start.Add(4 * time.Hour)), Capacity: 40, GuestsPerInvite: 1}}, "t")
	require.NoError(t, err)
	_, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true})
	require.NoError(t, err)
	return c
}

func mailFrom() mail.Address { return mail.Address{Name: "Rapport", Address: "events@example.com"} }

func dispatcher(t *testing.T, s *campaigns.Store, m jobs.Mailer, cfg jobs.DispatchConfig) *jobs.Dispatcher {
	t.Helper()
	comp, err := jobs.NewComposer("https://rapport.example.com", mail.Address{Name: "Rapport", Address: "events@example.com"}, "1 Main St, Chicago IL")
	require.NoError(t, err)
	return jobs.NewDispatcher(s, m, comp, cfg, quiet)
}

// outboxPerRecipient counts kept emails by recipient.
func outboxPerRecipient(t *testing.T, s *campaigns.Store, campaignID int64) map[string]int {
	t.Helper()
	msgs, err := s.Outbox(context.Background(), campaignID, 100000)
	require.NoError(t, err)
	out := map[string]int{}
	for _, m := range msgs {
		out[m.ToEmail]++
	}
	return out
}

func TestOutboxSendsEachAudienceMemberOnce(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		seedAudience(t, s, 250)
		c := startedEvent(t, s, 10)
		d := dispatcher(t, s, jobs.NewOutbox(s), jobs.DispatchConfig{BatchSize: 40, Concurrency: 3})
		require.NoError(t, d.Tick(ctx))

		c, err := s.Campaign(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, campaigns.StatusSent, c.Status)
		f, err := s.Funnel(ctx, c)
		require.NoError(t, err)
		require.EqualValues(t, 250, f.Audience, "the unsubscribed customer is not in the audience")
		require.EqualValues(t, 25, f.Holdout)
		require.EqualValues(t, 225, f.Sent)

		per := outboxPerRecipient(t, s, c.ID)
		require.Len(t, per, 225)
		for email, n := range per {
			require.Equal(t, 1, n, email)
		}
		require.NotContains(t, per, "gone@example.com")
		var held []string
		require.NoError(t, s.DB().Table("invitations").Where("campaign_id = ? AND holdout", c.ID).Pluck("email", &held).Error)
		for _, h := range held {
			require.NotContains(t, per, h, "holdout customers get nothing")
		}

		// What a recipient gets: their own links, the postal address, the
		// unsubscribe headers and the calendar file.
		msgs, err := s.Outbox(ctx, c.ID, 1)
		require.NoError(t, err)
		m, err := s.OutboxMessage(ctx, msgs[0].ID)
		require.NoError(t, err)
		require.Contains(t, m.TextBody, "https://rapport.example.com/r/")
		require.Contains(t, m.TextBody, "https://rapport.example.com/u/")
		require.Contains(t, m.TextBody, "1 Main St, Chicago IL")
		require.Contains(t, m.HTMLBody, "Golf &lt;9 holes&gt;", "names are escaped in HTML")
		require.NotContains(t, m.HTMLBody, "-rsvp_url-", "every tag is filled")
		require.Contains(t, m.Headers, "List-Unsubscribe-Post")
		require.Contains(t, m.Attachments, "text/calendar")
		require.Contains(t, m.Subject, "Golf <9 holes>")

		// Another tick sends nothing more.
		require.NoError(t, d.Tick(ctx))
		require.Len(t, outboxPerRecipient(t, s, c.ID), 225)
	})
}

// gated counts batch ids reserved and holds the first send until
// released.
type gated struct {
	*jobs.Outbox
	reserved, sends atomic.Int64
	entered         chan struct{}
	release         chan struct{}
}

func (g *gated) NewBatchID(ctx context.Context) (string, error) {
	g.reserved.Add(1)
	return g.Outbox.NewBatchID(ctx)
}

func (g *gated) Send(ctx context.Context, b *jobs.Batch) (string, error) {
	if g.sends.Add(1) == 1 {
		close(g.entered)
		<-g.release
	}
	return g.Outbox.Send(ctx, b)
}

// A sender reserves its next batch id while its batch is out at the mail
// service, not after: one round trip to the service fewer per batch.
func TestNextBatchIDIsReservedWhileABatchIsOut(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		seedAudience(t, s, 20)
		c := startedEvent(t, s, 0)
		g := &gated{Outbox: jobs.NewOutbox(s), entered: make(chan struct{}), release: make(chan struct{})}
		var once sync.Once
		free := func() { once.Do(func() { close(g.release) }) }
		t.Cleanup(free) // a failed check does not leave the send held
		d := dispatcher(t, s, g, jobs.DispatchConfig{BatchSize: 5, Concurrency: 1})
		done := make(chan error, 1)
		go func() { done <- d.Tick(ctx) }()
		<-g.entered
		require.Eventually(t, func() bool { return g.reserved.Load() == 2 }, 10*time.Second, time.Millisecond,
			"the second batch's id is reserved while the first is held")
		free()
		require.NoError(t, <-done)

		per := outboxPerRecipient(t, s, c.ID)
		require.Len(t, per, 20)
		for email, n := range per {
			require.Equal(t, 1, n, email)
		}
		// One id per claim: one per batch, one for the claim that found
		// nothing left, and one more when the sender, started at a random
		// place, found nothing after it before going back to the first.
		// None is reserved after the last.
		require.Contains(t, []int64{g.sends.Load() + 1, g.sends.Load() + 2}, g.reserved.Load())
	})
}

// flaky keeps emails in the outbox but reports failures: the ambiguous
// case (stored, then "500"), 429s, and a worker that dies after sending.
type flaky struct {
	*jobs.Outbox
	calls        atomic.Int64
	acceptThen5x func(n int64) bool
	rateLimit    func(n int64) bool
}

func (f *flaky) Send(ctx context.Context, b *jobs.Batch) (string, error) {
	n := f.calls.Add(1)
	if f.rateLimit != nil && f.rateLimit(n) {
		return "", &jobs.RateLimitedError{RetryAfter: 10 * time.Millisecond}
	}
	id, err := f.Outbox.Send(ctx, b)
	if err == nil && f.acceptThen5x != nil && f.acceptThen5x(n) {
		return "", &jobs.UncertainError{Err: errors.New("500 after accepting")}
	}
	return id, err
}

func TestAmbiguousFailuresAreRecalledNotDuplicated(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		seedAudience(t, s, 120)
		c := startedEvent(t, s, 0)
		m := &flaky{Outbox: jobs.NewOutbox(s),
			acceptThen5x: func(n int64) bool { return n%3 == 0 },
			rateLimit:    func(n int64) bool { return n%4 == 1 }}
		d := dispatcher(t, s, m, jobs.DispatchConfig{BatchSize: 10, Concurrency: 2})
		for i := 0; i < 50; i++ {
			require.NoError(t, d.Tick(ctx))
			c, _ = s.Campaign(ctx, c.ID)
			if c.Status == campaigns.StatusSent {
				break
			}
		}
		require.Equal(t, campaigns.StatusSent, c.Status)
		per := outboxPerRecipient(t, s, c.ID)
		require.Len(t, per, 120)
		for email, n := range per {
			require.Equal(t, 1, n, email)
		}
	})
}

// A worker dies after the mail service took its batch, before recording
// it: the lease runs out, another worker recalls the batch and sends again.
func TestExpiredLeaseIsRecalledAndResent(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		seedAudience(t, s, 30)
		c := startedEvent(t, s, 0)
		_, err := s.Start(ctx, c.ID)
		require.NoError(t, err)
		out := jobs.NewOutbox(s)
		// The dead worker: claims, sends, never settles.
		claims, err := s.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "dead", BatchID: "outbox-dead", Limit: 10,
			Lease: 50 * time.Millisecond, CancelBy: time.Now().Add(time.Hour)})
		require.NoError(t, err)
		comp, err := jobs.NewComposer("https://x.example", mail.Address{Address: "e@example.com"}, "addr")
		require.NoError(t, err)
		b, err := comp.Batch(c, claims, "outbox-dead", time.Now())
		require.NoError(t, err)
		_, err = out.Send(ctx, b)
		require.NoError(t, err)
		require.Len(t, outboxPerRecipient(t, s, c.ID), 10)
		time.Sleep(60 * time.Millisecond)

		d := dispatcher(t, s, out, jobs.DispatchConfig{BatchSize: 7})
		require.NoError(t, d.Tick(ctx))
		c, err = s.Campaign(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, campaigns.StatusSent, c.Status)
		per := outboxPerRecipient(t, s, c.ID)
		require.Len(t, per, 30)
		for email, n := range per {
			require.Equal(t, 1, n, email)
		}
	})
}

func TestMissedCampaignWaitsForConfirmation(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		seedAudience(t, s, 5)
		c := startedEvent(t, s, 0)
		require.NoError(t, s.DB().Exec("UPDATE campaigns SET send_at = ? WHERE id = ?", time.Now().UTC().Add(-48*time.Hour), c.ID).Error)
		d := dispatcher(t, s, jobs.NewOutbox(s), jobs.DispatchConfig{Lateness: 24 * time.Hour})
		require.NoError(t, d.Tick(ctx))
		c, err := s.Campaign(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, campaigns.StatusMissed, c.Status)
		require.Empty(t, outboxPerRecipient(t, s, c.ID), "nothing goes out silently late")
		_, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true})
		require.NoError(t, err)
		require.NoError(t, d.Tick(ctx))
		require.Len(t, outboxPerRecipient(t, s, c.ID), 5)
	})
}

func TestStandingGiftContactsOnlyNewlyQualified(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		seedAudience(t, s, 4)
		c, err := s.CreateCampaign(ctx, campaigns.CampaignInput{Kind: campaigns.KindGift, Name: "Monthly thanks",
			TimeZone: "America/Chicago", Filter: campaigns.Filter{Metros: []string{"Chicago"}},
			Gift: &campaigns.GiftFields{Type: "free_upgrade", Fulfilment: "manual"}}, "t")
		require.NoError(t, err)
		c, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{Cron: "0 9 1 * *"})
		require.NoError(t, err)
		loc, _ := time.LoadLocation("America/Chicago")
		next := c.SendAt.In(loc)
		require.Equal(t, 1, next.Day())
		require.Equal(t, 9, next.Hour(), "9:00 in the campaign's zone")

		d := dispatcher(t, s, jobs.NewOutbox(s), jobs.DispatchConfig{})
		run := func() {
			require.NoError(t, s.DB().Exec("UPDATE campaigns SET send_at = ? WHERE id = ?", time.Now().UTC().Add(-time.Minute), c.ID).Error)
			require.NoError(t, d.Tick(ctx))
		}
		run()
		require.Len(t, outboxPerRecipient(t, s, c.ID), 4)
		c, err = s.Campaign(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, campaigns.StatusScheduled, c.Status, "back to waiting for the next run")
		require.True(t, c.SendAt.After(time.Now()))

		_, err = s.ImportCustomers(ctx, strings.NewReader("name,email,metro_area\nNew Friend,new@example.com,Chicago\n"), campaigns.ImportOptions{Actor: "t"})
		require.NoError(t, err)
		run()
		per := outboxPerRecipient(t, s, c.ID)
		require.Len(t, per, 5)
		for email, n := range per {
			require.Equal(t, 1, n, "%s is contacted once across runs", email)
		}
	})
}

// A standing gift on SendGrid starts each run Lead (15 minutes) before its
// cron time and finishes before that time. The next run is the next cron
// time after this run's, not after now (which is this run again): one cron
// time is one run, however many ticks fall in the lead.
func TestStandingCampaignRunsOncePerCronTimeWithinTheLead(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		fake := sendgridfake.New()
		defer fake.Close()
		seedAudience(t, s, 4)
		c, err := s.CreateCampaign(ctx, campaigns.CampaignInput{Kind: campaigns.KindGift, Name: "Daily thanks",
			TimeZone: "America/Chicago", Filter: campaigns.Filter{Metros: []string{"Chicago"}},
			Gift: &campaigns.GiftFields{Type: "free_upgrade", Fulfilment: "manual"}}, "t")
		require.NoError(t, err)
		// Daily, at a minute about 10 minutes from now (Chicago): inside the lead.
		loc, _ := time.LoadLocation("America/Chicago")
		at := time.Now().In(loc).Add(10 * time.Minute)
		c, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{Cron: fmt.Sprintf("%d %d * * *", at.Minute(), at.Hour())})
		require.NoError(t, err)
		runAt := *c.SendAt
		sg := jobs.NewSendGrid(jobs.SendGridConfig{APIKey: "SG.test", BaseURL: fake.URL})
		d := dispatcher(t, s, sg, jobs.DispatchConfig{})
		for i := 0; i < 3; i++ {
			require.NoError(t, d.Tick(ctx))
		}
		c, err = s.Campaign(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, 1, c.Runs, "one cron time is one run")
		require.Equal(t, campaigns.StatusScheduled, c.Status)
		next := runAt.In(loc).AddDate(0, 0, 1) // the same wall-clock time tomorrow
		require.True(t, next.Equal(*c.SendAt), "the next run is tomorrow's: want %s, got %s", next, c.SendAt.In(loc))
		require.Equal(t, 4, fake.DeliveredCount())
	})
}

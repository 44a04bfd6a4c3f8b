package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
	"github.com/rapport/rapport/jobs/sendgridfake"
)

// TestWorkersKilledMidSendSendEachEmailOnce runs real `rapport worker`
// processes on PostgreSQL against a fake SendGrid that is slow and answers
// 429 now and then, SIGKILLs them at random moments and restarts them, and
// then asks the fake what reached whom: every audience member exactly once,
// nobody held out or unsubscribed.
func TestWorkersKilledMidSendSendEachEmailOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("kills worker processes for a minute; skipped with -short")
	}
	if len(campaignstest.Available(t)) < 2 {
		t.Skip("needs PostgreSQL (TEST_DATABASE_URL)")
	}
	const customers, kills = 3000, 20
	ctx := context.Background()
	dbURL := campaignstest.URL(t, campaignstest.Postgres)
	store, err := campaigns.Open(ctx, dbURL)
	require.NoError(t, err)
	defer store.Close()
	_, err = store.Migrate(ctx)
	require.NoError(t, err)

	var b strings.Builder
	b.WriteString("name,email,metro_area,annual_spend\n")
	for i := 0; i < customers; i++ {
		fmt.Fprintf(&b, "Guest %d,guest%d@example.com,Chicago,500\n", i, i)
	}
	_, err = store.ImportCustomers(ctx, strings.NewReader(b.String()), campaigns.ImportOptions{Actor: "test"})
	require.NoError(t, err)
	page, err := store.ListCustomers(ctx, campaigns.CustomerQuery{Q: "guest7@example.com"})
	require.NoError(t, err)
	require.NoError(t, store.SetConsent(ctx, page.Items[0].ID, campaigns.Unsubscribed, "test"))

	fake := sendgridfake.New()
	defer fake.Close()
	fake.SetLatency(150 * time.Millisecond)
	fake.SetRateLimit(0.05, time.Second)

	bin := filepath.Join(t.TempDir(), "rapport")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, string(out))

	start := time.Now().Add(10 * 24 * time.Hour)
	c, err := store.CreateCampaign(ctx, campaigns.CampaignInput{Kind: campaigns.KindEvent, Name: "Kill test",
		TimeZone: "America/Chicago", HoldoutPercent: 10, Filter: campaigns.Filter{Metros: []string{"Chicago"}},
		Event: &campaigns.EventFields{Venue: "Hall", StartsAt: &start, EndsAt: ptrTime(start.Add(time.Hour)), Capacity: 100}}, "test")
	require.NoError(t, err)
	_, err = store.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true})
	require.NoError(t, err)

	logDir := t.TempDir()
	spawn := func(n int) *exec.Cmd {
		cmd := exec.Command(bin, "worker")
		cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "SENDGRID_API_KEY=SG.test", "SENDGRID_BASE_URL="+fake.URL,
			"SCHEDULER_TICK=200ms", "SEND_LEASE=2s", "SEND_TIMEOUT=800ms", "SEND_BATCH_SIZE=25", "SEND_CONCURRENCY=2",
			"BASE_URL=https://rapport.example.com", "MAIL_POSTAL_ADDRESS=1 Main St")
		f, err := os.Create(filepath.Join(logDir, fmt.Sprintf("worker-%d.log", n)))
		require.NoError(t, err)
		cmd.Stdout, cmd.Stderr = f, f
		require.NoError(t, cmd.Start())
		return cmd
	}
	workers := []*exec.Cmd{spawn(0), spawn(1)}
	defer func() {
		for _, w := range workers {
			_ = w.Process.Kill()
			_, _ = w.Process.Wait()
		}
	}()
	rng := rand.New(rand.NewPCG(7, 11))
	for k := 0; k < kills; k++ {
		time.Sleep(time.Duration(150+rng.IntN(400)) * time.Millisecond)
		i := rng.IntN(len(workers))
		require.NoError(t, workers[i].Process.Signal(syscall.SIGKILL))
		_, _ = workers[i].Process.Wait()
		workers[i] = spawn(2 + k)
	}
	require.Eventually(t, func() bool {
		c, err = store.Campaign(ctx, c.ID)
		return err == nil && c.Status == campaigns.StatusSent
	}, 3*time.Minute, 250*time.Millisecond, "the campaign did not finish")

	f, err := store.Funnel(ctx, c)
	require.NoError(t, err)
	per := fake.PerRecipient()
	var held []string
	require.NoError(t, store.DB().Table("invitations").Where("campaign_id = ? AND holdout", c.ID).Pluck("email", &held).Error)
	require.EqualValues(t, customers-1, f.Audience)
	require.Len(t, held, int(f.Holdout))
	dups, lost := 0, 0
	heldSet := map[string]bool{}
	for _, h := range held {
		heldSet[h] = true
		require.Zero(t, per[h], "held-out %s got mail", h)
	}
	for i := 0; i < customers; i++ {
		e := fmt.Sprintf("guest%d@example.com", i)
		switch {
		case i == 7 || heldSet[e]:
			require.Zero(t, per[e], e)
		case per[e] == 0:
			lost++
		case per[e] > 1:
			dups++
		}
	}
	t.Logf("%d kills; %d delivered to %d recipients; %d requests; %d uncertain", kills, fake.DeliveredCount(), len(per), fake.Requests(), f.Uncertain)
	recalls := 0
	logs, _ := filepath.Glob(filepath.Join(logDir, "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		recalls += strings.Count(string(b), "recalled an expired batch")
	}
	t.Logf("%d batches recalled after a kill and sent again", recalls)
	require.Positive(t, recalls, "the kills should have hit workers mid-send")
	require.Zero(t, dups, "duplicates")
	require.Zero(t, lost, "lost")
	require.Zero(t, f.Uncertain)
	require.EqualValues(t, int(f.Audience-f.Holdout), f.Sent)
}

func ptrTime(t time.Time) *time.Time { return &t }

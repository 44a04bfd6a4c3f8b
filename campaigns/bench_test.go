package campaigns_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
)

// sentRSVPLink is the RSVP link of one guest claimed for sending.
func sentRSVPLink(b *testing.B, s *campaigns.Store, prefix string) string {
	ctx := context.Background()
	addCustomers(b, s, 1, prefix)
	c := startCampaign(b, s, eventInput("Bench"))
	cls, err := s.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "bench", BatchID: "b", Limit: 1, Lease: time.Hour, CancelBy: time.Now().Add(time.Hour)})
	if err != nil || len(cls) != 1 {
		b.Fatal(err, len(cls))
	}
	return cls[0].Tokens[campaigns.TokenRSVP]
}

// BenchmarkResolveLink: hashing a public link's secret and finding its
// link set by id, as every link sent now is (links.go).
func BenchmarkResolveLink(b *testing.B) {
	s := campaignstest.Open(b, campaignstest.SQLite)
	ctx := context.Background()
	link := sentRSVPLink(b, s, "bl")
	for b.Loop() {
		if _, err := s.ResolveToken(ctx, campaigns.TokenRSVP, link); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResolveToken: hashing a token stored one row each (links sent
// before link sets) and finding it.
func BenchmarkResolveToken(b *testing.B) {
	s := campaignstest.Open(b, campaignstest.SQLite)
	ctx := context.Background()
	c, err := s.UpsertCustomer(ctx, campaigns.CustomerInput{Name: "Bench", Email: "bench@example.com"},
		campaigns.UpsertMeta{Actor: "bench", Source: "bench", Rule: campaigns.RuleAPI})
	if err != nil {
		b.Fatal(err)
	}
	const plain = "k3x9q2m7w8p4r6t1v5y0z2a4c6e8g0"
	now := time.Now()
	if err := s.DB().Create(&campaigns.PublicToken{TokenHash: campaigns.HashSecret(plain), Kind: campaigns.TokenRSVP,
		CustomerID: c.Customer.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}).Error; err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.ResolveToken(ctx, campaigns.TokenRSVP, plain); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHashSecret: the SHA-256 every token lookup starts with.
func BenchmarkHashSecret(b *testing.B) {
	for b.Loop() {
		_ = campaigns.HashSecret("k3x9q2m7w8p4r6t1v5y0z2a4c6e8g0")
	}
}

// BenchmarkAudienceSQL: a builder filter turned into SQL.
func BenchmarkAudienceSQL(b *testing.B) {
	s := campaignstest.Open(b, campaignstest.SQLite)
	min, lo, hi, days := int64(500000), 2, 6, 30
	f := campaigns.Filter{Metros: []string{"Chicago", "Evanston", "Milwaukee"}, MinSpendCents: &min, MinLevel: &lo, MaxLevel: &hi,
		NotContactedWithinDays: &days, OwnerIDs: []int64{1, 2, 3}}
	for b.Loop() {
		_ = s.AudienceSQL(f)
	}
}

// BenchmarkIncrementalROI: Welch's interval over 10,000 treated and 1,000
// held-out guests, as the finance page computes per campaign.
func BenchmarkIncrementalROI(b *testing.B) {
	treated, held := make([]int64, 10000), make([]int64, 1000)
	for i := range treated {
		treated[i] = int64(i%37) * 1000
	}
	for i := range held {
		held[i] = int64(i%41) * 800
	}
	for b.Loop() {
		t, h := campaigns.SampleOf(treated), campaigns.SampleOf(held)
		_, _, _ = campaigns.IncrementalROI(t, h, 500000)
	}
}

// BenchmarkGuestByToken: reading a guest by their RSVP link, as every RSVP
// request starts (PostgreSQL when TEST_DATABASE_URL is set, else SQLite).
func BenchmarkGuestByToken(b *testing.B) {
	ds := campaignstest.Available(b)
	s := campaignstest.Open(b, ds[len(ds)-1])
	ctx := context.Background()
	link := sentRSVPLink(b, s, "br")
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if _, err := s.RSVPByToken(ctx, link); err != nil {
			b.Fatal(err)
		}
	}
}

// reportCPU reports this process's CPU time per op (user and system), which
// a round trip to the database does not hide as wall time does.
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() { b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op") }
}

// BenchmarkApplyEmailEvents: one webhook batch of 1,000 events (a third
// each processed, delivered and open, as SendGrid reports a send) for
// 1,000 guests whose invitations were sent. Between batches the guests go
// back to sent and unopened; their "delivered" credits, already in the
// ledger, are found and skipped after the first batch.
func BenchmarkApplyEmailEvents(b *testing.B) {
	ds := campaignstest.Available(b)
	s := campaignstest.Open(b, ds[len(ds)-1])
	ctx := context.Background()
	if _, err := s.Seed(ctx, campaigns.SeedOptions{Customers: 1000, Metros: 1, Seed: 3, Actor: "bench", Tag: "ev"}); err != nil {
		b.Fatal(err)
	}
	in := eventInput("Webhook bench")
	in.Event.Capacity = 2000
	c := startCampaign(b, s, in)
	cls, err := s.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "bench", BatchID: "b", Limit: 1000, Lease: time.Hour, CancelBy: time.Now().Add(time.Hour)})
	if err != nil || len(cls) < 900 {
		b.Fatal(err, len(cls))
	}
	ids := make([]int64, len(cls))
	for i, cl := range cls {
		ids[i] = cl.ID
	}
	if _, err := s.SettleSent(ctx, campaigns.QueueInvitations, "bench", "b", ids, "m", false); err != nil {
		b.Fatal(err)
	}
	kinds := []string{campaigns.EvDelivered, campaigns.EvOpen, "processed"}
	b.ReportAllocs()
	defer reportCPU(b)()
	round := 0
	for b.Loop() {
		b.StopTimer()
		if err := s.DB().Exec("UPDATE invitations SET status = 'sent', delivered_at = NULL, opened_at = NULL WHERE campaign_id = ?", c.ID).Error; err != nil {
			b.Fatal(err)
		}
		evs := make([]campaigns.EmailEvent, 1000)
		for i := range evs {
			id := ids[i%len(ids)]
			evs[i] = campaigns.EmailEvent{SGEventID: fmt.Sprintf("bench-%d-%d", round, i), InvitationID: &id,
				Event: kinds[(i/len(ids)+i)%3], Email: cls[i%len(ids)].Email, OccurredAt: time.Now()}
		}
		round++
		b.StartTimer()
		if n, err := s.ApplyEmailEvents(ctx, evs); err != nil || n != len(evs) {
			b.Fatal(err, n)
		}
	}
}

package jobs_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/jobs"
	"github.com/rapport/rapport/jobs/sendgridfake"
)

// benchBatch composes one request's worth (1,000 guests) of invitations.
func benchBatch(b *testing.B) (*jobs.Composer, *campaigns.Campaign, []campaigns.Claim) {
	b.Helper()
	comp, err := jobs.NewComposer("https://rapport.example.com", mailFrom(), "1 Main St, Chicago IL")
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now().Add(14 * 24 * time.Hour)
	end := start.Add(3 * time.Hour)
	c := &campaigns.Campaign{ID: 1, Kind: campaigns.KindEvent, Name: "Art museum evening", TimeZone: "America/Chicago",
		Venue: "Art Institute", Address: "111 S Michigan Ave", StartsAt: &start, EndsAt: &end, Capacity: 200, GuestsPerInvite: 1}
	claims := make([]campaigns.Claim, jobs.MaxRecipients)
	for i := range claims {
		claims[i] = campaigns.Claim{Invitation: campaigns.Invitation{ID: int64(i + 1), CampaignID: 1, CustomerID: int64(i + 1),
			Email: fmt.Sprintf("guest%d@example.com", i)}, QueueID: int64(i + 1), Kind: "invitation", Name: fmt.Sprintf("Guest %d", i),
			Tokens: map[string]string{campaigns.TokenRSVP: fmt.Sprintf("r%031d", i), campaigns.TokenUnsubscribe: fmt.Sprintf("u%031d", i),
				campaigns.TokenCheckin: fmt.Sprintf("c%031d", i)}}
	}
	return comp, c, claims
}

// BenchmarkComposeBatch: templates, links and the .ics for 1,000 guests.
func BenchmarkComposeBatch(b *testing.B) {
	comp, c, claims := benchBatch(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := comp.Batch(c, claims, "batch", time.Now().Add(15*time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(claims))/b.Elapsed().Seconds(), "recipients/s")
}

// BenchmarkSendGridPayload: the v3 request for 1,000 personalizations,
// built by sendgrid-go and posted to the fake on loopback.
func BenchmarkSendGridPayload(b *testing.B) {
	comp, c, claims := benchBatch(b)
	fake := sendgridfake.New()
	defer fake.Close()
	sg := jobs.NewSendGrid(jobs.SendGridConfig{APIKey: "SG.bench", BaseURL: fake.URL})
	ctx := context.Background()
	id, err := sg.NewBatchID(ctx)
	if err != nil {
		b.Fatal(err)
	}
	batch, err := comp.Batch(c, claims, id, time.Now().Add(15*time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sg.Send(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(claims))/b.Elapsed().Seconds(), "recipients/s")
}

// Command roibench times the ROI report over many campaigns and purchases
// on PostgreSQL: it fills a scratch database (customers, gift campaigns
// with delivered invitations and a holdout, cost lines, purchases), then
// runs the API's report three times, and the finance page's (the report
// and its total, each purchase once) three times.
//
//	go run ./scripts/roibench -database postgres://…/rapport_roibench -campaigns 1000 -purchases 1000000
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/config"
)

func main() {
	dbURL := flag.String("database", os.Getenv("DATABASE_URL"), "a scratch PostgreSQL database")
	nc := flag.Int("campaigns", 1000, "gift campaigns")
	np := flag.Int("purchases", 1000000, "purchases")
	ncust := flag.Int("customers", 100000, "customers")
	reuse := flag.Bool("reuse", false, "time the report on the data a previous run left")
	flag.Parse()
	if err := run(*dbURL, *nc, *np, *ncust, *reuse); err != nil {
		fmt.Fprintln(os.Stderr, "roibench:", err)
		os.Exit(1)
	}
}

func run(dbURL string, nc, np, ncust int, reuse bool) error {
	ctx := context.Background()
	s, err := campaigns.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer s.Close()
	if s.Dialect() != config.Postgres {
		return fmt.Errorf("roibench needs PostgreSQL")
	}
	if _, err := s.Migrate(ctx); err != nil {
		return err
	}
	now := time.Now().UTC()
	if !reuse {
		if err := fill(ctx, s, nc, np, ncust, now); err != nil {
			return err
		}
	}
	for i := 0; i < 3; i++ {
		t1 := time.Now()
		rows, err := s.ROIReport(ctx, now.Add(-90*24*time.Hour), now)
		if err != nil {
			return err
		}
		fmt.Printf("ROI report: %d campaigns in %s\n", len(rows), time.Since(t1).Round(time.Millisecond))
	}
	// The finance page adds the report's total, each purchase once (no
	// goal of its own; the API's report is the row above).
	for i := 0; i < 3; i++ {
		t1 := time.Now()
		rows, _, err := s.ROIReportWithTotal(ctx, now.Add(-90*24*time.Hour), now)
		if err != nil {
			return err
		}
		fmt.Printf("finance page's report and total: %d campaigns in %s\n", len(rows), time.Since(t1).Round(time.Millisecond))
	}
	return nil
}

func fill(ctx context.Context, s *campaigns.Store, nc, np, ncust int, now time.Time) error {
	db := s.DB()
	t0 := time.Now()
	if _, err := s.Seed(ctx, campaigns.SeedOptions{Customers: ncust, Metros: 5, Seed: 9, Actor: "bench"}); err != nil {
		return err
	}
	var first, last int64
	if err := db.Raw("SELECT min(id), max(id) FROM customers").Row().Scan(&first, &last); err != nil {
		return err
	}
	for i := 0; i < nc; i++ {
		c, err := s.CreateCampaign(ctx, campaigns.CampaignInput{Kind: campaigns.KindGift, Name: fmt.Sprintf("Bench gift %d", i),
			TimeZone: "UTC", HoldoutPercent: 10, Gift: &campaigns.GiftFields{Type: "free_upgrade", Fulfilment: "manual"}}, "bench")
		if err != nil {
			return err
		}
		amt := int64(50000)
		if _, err := s.AddCost(ctx, c.ID, campaigns.CostInput{Category: "gifts", AmountCents: &amt, Per: "fixed"}, "bench"); err != nil {
			return err
		}
	}
	// 100 invitations per campaign: delivered, or held out one in ten.
	if err := db.Exec(`UPDATE campaigns SET status = 'sent', runs = 1, last_run_at = ?`, now.Add(-60*24*time.Hour)).Error; err != nil {
		return err
	}
	if err := db.Exec(`INSERT INTO invitations (campaign_id, customer_id, email, run, holdout, status, attempts, rsvp, guests,
		attended, sent_at, delivered_at, created_at, updated_at)
		SELECT k.id, c.id, c.email, 1, (g % 10 = 0), CASE WHEN g % 10 = 0 THEN 'pending' ELSE 'delivered' END, 1, 'none', 0, false,
		  CASE WHEN g % 10 = 0 THEN NULL ELSE ?::timestamptz END, NULL, ?, ?
		FROM campaigns k CROSS JOIN generate_series(1, 100) g
		JOIN customers c ON c.id = ? + ((g::bigint * 7919 + k.id * 131) % ?)
		ON CONFLICT DO NOTHING`, now.Add(-60*24*time.Hour), now, now, first, last-first+1).Error; err != nil {
		return err
	}
	if err := db.Exec(`INSERT INTO purchases (external_id, customer_id, amount_cents, purchased_at, created_at)
		SELECT 'B-' || g, ? + (g::bigint * 104729) % ?, 1000 + (g % 50) * 100, ?::timestamptz + ((g % 120) || ' days')::interval, ?
		FROM generate_series(1, ?) g ON CONFLICT DO NOTHING`, first, last-first+1, now.Add(-100*24*time.Hour), now, np).Error; err != nil {
		return err
	}
	// VACUUM sets the visibility map, as autovacuum would on a live
	// database; without it every index-only lookup visits the heap.
	if err := db.Exec("VACUUM ANALYZE").Error; err != nil {
		return err
	}
	fmt.Printf("filled: %d customers, %d campaigns, %d purchases in %s\n", ncust, nc, np, time.Since(t0).Round(time.Millisecond))
	return nil
}

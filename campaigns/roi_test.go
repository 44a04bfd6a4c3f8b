package campaigns_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
)

// The case, computed by hand: a gift with a 50% holdout, two cost
// lines, delivery webhooks, purchases before the send, inside and outside
// the window, by a holdout customer, by someone referred, and one twice.
func TestGiftROIMatchesAHandComputation(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		t0 := time.Now().UTC().Add(-30 * 24 * time.Hour).Truncate(time.Second)
		s.SetClock(func() time.Time { return t0 })
		defer s.SetClock(time.Now)
		addCustomers(t, s, 8, fmt.Sprintf("roi%d-", time.Now().UnixNano()%100000))
		c, err := s.CreateCampaign(ctx, campaigns.CampaignInput{Kind: campaigns.KindGift, Name: "Thanks", TimeZone: "UTC",
			HoldoutPercent: 50, AttributionDays: ptr(10), Filter: campaigns.Filter{Metros: []string{"Chicago"}},
			Gift: &campaigns.GiftFields{Type: "free_upgrade", Fulfilment: "manual"}}, "t")
		require.NoError(t, err)
		_, err = s.AddCost(ctx, c.ID, campaigns.CostInput{Category: "design", AmountCents: ptr(int64(10000)), Per: "fixed"}, "fin")
		require.NoError(t, err)
		_, err = s.AddCost(ctx, c.ID, campaigns.CostInput{Category: "upgrade", AmountCents: ptr(int64(1000)), Per: "gift"}, "fin")
		require.NoError(t, err)
		_, err = s.AddCost(ctx, c.ID, campaigns.CostInput{Category: "oops", AmountCents: ptr(int64(1)), Per: "attendee"}, "fin")
		require.Equal(t, campaigns.EINVALID, campaigns.ErrorCode(err), "a gift has no attendees")
		_, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true})
		require.NoError(t, err)
		_, err = s.Start(ctx, c.ID)
		require.NoError(t, err)
		cl, err := s.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "w", BatchID: "b", Limit: 100, Lease: time.Hour, CancelBy: t0.Add(time.Hour)})
		require.NoError(t, err)
		require.Len(t, cl, 4, "half held out")
		var sent []int64
		for _, x := range cl {
			sent = append(sent, x.ID)
		}
		_, err = s.SettleSent(ctx, campaigns.QueueInvitations, "w", "b", sent, "m", false)
		require.NoError(t, err)
		// Three of the four are reported delivered: only they are treated.
		var evs []campaigns.EmailEvent
		for i, x := range cl[:3] {
			id := x.ID
			evs = append(evs, campaigns.EmailEvent{SGEventID: fmt.Sprint("d", i), InvitationID: &id, Email: x.Email, Event: "delivered", OccurredAt: t0})
		}
		_, err = s.ApplyEmailEvents(ctx, evs)
		require.NoError(t, err)
		s.SetClock(time.Now)

		var held []int64
		require.NoError(t, s.DB().Table("invitations").Where("campaign_id = ? AND holdout", c.ID).Order("customer_id").Pluck("customer_id", &held).Error)
		require.Len(t, held, 4)
		a, b, cc := cl[0].CustomerID, cl[1].CustomerID, cl[2].CustomerID
		buy := func(ext string, who int64, cents int64, at time.Time) bool {
			_, created, err := s.RecordPurchase(ctx, campaigns.PurchaseInput{ExternalID: ext, CustomerID: who, AmountCents: &cents, PurchasedAt: &at}, "t")
			require.NoError(t, err)
			return created
		}
		require.True(t, buy("O-1", a, 20000, t0.Add(24*time.Hour)))
		require.False(t, buy("O-1", a, 20000, t0.Add(24*time.Hour)), "the same order twice is one purchase")
		buy("O-2", a, 99999, t0.Add(15*24*time.Hour)) // after the 10-day window
		buy("O-3", b, 5000, t0.Add(-2*24*time.Hour))  // before the send
		buy("O-4", b, 10000, t0.Add(48*time.Hour))
		buy("O-5", held[0], 8000, t0.Add(24*time.Hour))          // a holdout customer
		buy("O-6", cl[3].CustomerID, 7000, t0.Add(24*time.Hour)) // sent, never delivered: not treated
		in := campaigns.ReferralInput{ReferrerID: a, CampaignID: &c.ID}
		in.Referred.Name, in.Referred.Email = "Referred Person", fmt.Sprintf("referred%d@example.com", time.Now().UnixNano())
		r, _, err := s.RecordReferral(ctx, in, nil)
		require.NoError(t, err)
		buy("O-7", r.ReferredCustomerID, 3000, t0.Add(72*time.Hour))
		_ = cc

		roi, err := s.CampaignROI(ctx, c.ID)
		require.NoError(t, err)
		// Cost: 10000 fixed + 1000 x 3 delivered gifts = 13000.
		require.EqualValues(t, 13000, roi.CostCents)
		require.EqualValues(t, 3, roi.Gifts)
		require.Equal(t, "delivered", roi.GiftsBasis)
		// Revenue: A 20000 + B 10000 + C 0 + referred 3000 = 33000.
		require.EqualValues(t, 33000, roi.RevenueCents)
		require.EqualValues(t, 3000, roi.ReferredRevenueCents)
		// Naive: (33000 - 13000) / 13000.
		require.InDelta(t, 20000.0/13000, *roi.NaiveROI, 1e-9)
		// Incremental: treated own [20000, 10000, 0] mean 10000; holdout
		// [8000, 0, 0, 0] mean 2000; ((10000 - 2000) x 3 - 13000) / 13000.
		require.True(t, roi.Incremental.Measurable, roi.Incremental.Reason)
		require.Equal(t, 3, roi.Incremental.Treated)
		require.Equal(t, 4, roi.Incremental.Holdout)
		require.InDelta(t, 11000.0/13000, *roi.Incremental.ROI, 1e-9)
		require.Nil(t, roi.Incremental.Low, "3 treated and 4 held out: too few for a 95% interval")
		require.Nil(t, roi.Incremental.High)
		require.Equal(t, "no 95% interval: fewer than 5 customers in the treated or the holdout group", roi.Incremental.Reason)
		require.EqualValues(t, 1, roi.Referrals)
		require.EqualValues(t, 4333, *roi.CostPerAttendeeCents, "13000 / 3 gifts, to the cent")
		require.EqualValues(t, 13000, *roi.CostPerReferralCents)

		// Lifetime value is every purchase, in or out of any window.
		ltv, n, err := s.LifetimeValue(ctx, a)
		require.NoError(t, err)
		require.EqualValues(t, 119999, ltv)
		require.EqualValues(t, 2, n)
		// Two purchase days: at least Good customer.
		cu, err := s.Customer(ctx, b)
		require.NoError(t, err)
		require.Equal(t, campaigns.LevelGoodCustomer, cu.Level)

		report, err := s.ROIReport(ctx, t0.Add(-time.Hour), time.Now())
		require.NoError(t, err)
		require.Len(t, report, 1)
		require.Equal(t, roi.RevenueCents, report[0].RevenueCents)

		// Without a holdout, incremental is not measurable (never zero).
		c2, err := s.CreateCampaign(ctx, campaigns.CampaignInput{Kind: campaigns.KindGift, Name: "No holdout", TimeZone: "UTC",
			Gift: &campaigns.GiftFields{Type: "free_upgrade", Fulfilment: "manual"}}, "t")
		require.NoError(t, err)
		roi2, err := s.CampaignROI(ctx, c2.ID)
		require.NoError(t, err)
		require.False(t, roi2.Incremental.Measurable)
		require.Nil(t, roi2.Incremental.ROI)
		require.Nil(t, roi2.NaiveROI, "no cost: no ratio")
	})
}

func TestPurchaseValidationAndImport(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		ids := addCustomers(t, s, 1, fmt.Sprintf("pu%d-", time.Now().UnixNano()%100000))
		_, _, err := s.RecordPurchase(ctx, campaigns.PurchaseInput{}, "t")
		require.Equal(t, campaigns.EINVALID, campaigns.ErrorCode(err))
		for _, f := range []string{"external_id", "amount_cents", "purchased_at", "customer_id"} {
			require.Contains(t, err.(*campaigns.Error).Fields, f)
		}
		cu, err := s.Customer(ctx, ids[0])
		require.NoError(t, err)
		csv := "external_id,customer_email,amount,purchased_at\r\nP-1," + cu.Email + ",\"$1,200.00\",2026-10-08T09:00:00+00:00\r\n" +
			"P-2,nobody@example.com,5,2026-10-08\r\nP-3," + cu.Email + ",abc,2026-10-08\r\nP-1," + cu.Email + ",\"$1,200.00\",2026-10-08T09:00:00+00:00\r\n"
		res, err := s.ImportPurchases(ctx, stringsReader(csv), "t")
		require.NoError(t, err)
		require.Equal(t, 1, res.Inserted)
		require.Equal(t, 1, res.Existing)
		require.Equal(t, 2, res.Rejected)
		ltv, _, err := s.LifetimeValue(ctx, ids[0])
		require.NoError(t, err)
		require.EqualValues(t, 120000, ltv)
		cu, err = s.Customer(ctx, ids[0])
		require.NoError(t, err)
		require.Equal(t, campaigns.LevelCustomer, cu.Level, "first purchase: at least Customer")
	})
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

// The report of many campaigns (on PostgreSQL, revenue in two halves at
// once beside the counts) gives each campaign exactly what its own ROI
// page gives.
func TestROIReportAgreesWithEachCampaign(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		tag := time.Now().UnixNano() % 1_000_000
		cust := addCustomers(t, s, 40, fmt.Sprintf("roirep%d-", tag))
		t0 := time.Now().UTC().Add(-20 * 24 * time.Hour).Truncate(time.Second)
		const n = 110 // more than two chunks' minimum: the split is exercised
		mine := map[int64]bool{}
		for i := 0; i < n; i++ {
			c, err := s.CreateCampaign(ctx, campaigns.CampaignInput{Kind: campaigns.KindGift, Name: fmt.Sprint("Report gift ", i),
				TimeZone: "UTC", HoldoutPercent: 20, AttributionDays: ptr(3 + i%7),
				Gift: &campaigns.GiftFields{Type: "free_upgrade", Fulfilment: "manual"}}, "t")
			require.NoError(t, err)
			_, err = s.AddCost(ctx, c.ID, campaigns.CostInput{Category: "gifts", AmountCents: ptr(int64(1000 + 10*i)), Per: "fixed"}, "t")
			require.NoError(t, err)
			require.NoError(t, s.DB().Table("campaigns").Where("id = ?", c.ID).Update("status", campaigns.StatusSent).Error)
			mine[c.ID] = true
			sent := t0.Add(time.Duration(i) * time.Hour)
			var invs []campaigns.Invitation
			for k := 0; k < 6; k++ {
				who := cust[(i*7+k*5)%len(cust)]
				st := campaigns.InvDelivered
				if k == 4 && i%3 == 0 {
					st = campaigns.InvSent
				}
				invs = append(invs, campaigns.Invitation{CampaignID: c.ID, CustomerID: who, Email: fmt.Sprint(who, "@x"), Run: 1,
					Holdout: k >= 4, Status: st, SentAt: &sent, RSVP: "none", CreatedAt: sent, UpdatedAt: sent})
			}
			require.NoError(t, s.DB().Create(&invs).Error)
		}
		var buys []campaigns.Purchase
		for k := 0; k < 400; k++ {
			buys = append(buys, campaigns.Purchase{ExternalID: fmt.Sprintf("RR%d-%d", tag, k), CustomerID: cust[(k*13)%len(cust)],
				AmountCents: int64(500 + 37*k), PurchasedAt: t0.Add(time.Duration(k*97) * time.Minute), CreatedAt: t0})
		}
		require.NoError(t, s.DB().Create(&buys).Error)

		report, err := s.ROIReport(ctx, t0.Add(-time.Hour), time.Now())
		require.NoError(t, err)
		seen, revenue := 0, int64(0)
		for _, got := range report {
			if !mine[got.CampaignID] {
				continue
			}
			seen++
			one, err := s.CampaignROI(ctx, got.CampaignID)
			require.NoError(t, err)
			require.Equal(t, one.RevenueCents, got.RevenueCents, "campaign %d", got.CampaignID)
			require.Equal(t, one.CostCents, got.CostCents, "campaign %d", got.CampaignID)
			require.Equal(t, one.Gifts, got.Gifts, "campaign %d", got.CampaignID)
			require.Equal(t, one.Incremental.Treated, got.Incremental.Treated, "campaign %d", got.CampaignID)
			require.Equal(t, one.Incremental.Holdout, got.Incremental.Holdout, "campaign %d", got.CampaignID)
			require.Equal(t, one.Incremental.ROI, got.Incremental.ROI, "campaign %d", got.CampaignID)
			require.Equal(t, one.NaiveROI, got.NaiveROI, "campaign %d", got.CampaignID)
			revenue += got.RevenueCents
		}
		require.Equal(t, n, seen)
		require.Positive(t, revenue, "purchases fall inside the windows")
	})
}

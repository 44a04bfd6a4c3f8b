package campaigns_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
)

// sentGift makes a sent gift campaign whose invitations are inserted as
// the sender leaves them (run, holdout, status, sent_at): a standing gift's
// runs months apart, without waiting for them.
func sentGift(t *testing.T, s *campaigns.Store, name string, days int, invs []campaigns.Invitation) *campaigns.Campaign {
	t.Helper()
	ctx := context.Background()
	c, err := s.CreateCampaign(ctx, campaigns.CampaignInput{Kind: campaigns.KindGift, Name: name, TimeZone: "UTC",
		AttributionDays: ptr(days), Gift: &campaigns.GiftFields{Type: "free_upgrade", Fulfilment: "manual"}}, "t")
	require.NoError(t, err)
	require.NoError(t, s.DB().Table("campaigns").Where("id = ?", c.ID).Update("status", campaigns.StatusSent).Error)
	for i := range invs {
		invs[i].CampaignID, invs[i].RSVP = c.ID, "none"
		invs[i].Email = fmt.Sprint(invs[i].CustomerID, "@x")
		if invs[i].Status == "" {
			invs[i].Status = campaigns.InvPending // the holdout is never sent
		}
		invs[i].CreatedAt = time.Now().UTC()
		if invs[i].SentAt != nil {
			invs[i].CreatedAt = *invs[i].SentAt
		}
		invs[i].UpdatedAt = invs[i].CreatedAt
	}
	require.NoError(t, s.DB().Create(&invs).Error)
	return c
}

func recordBuy(t *testing.T, s *campaigns.Store, ext string, who, cents int64, at time.Time) {
	t.Helper()
	_, _, err := s.RecordPurchase(context.Background(), campaigns.PurchaseInput{ExternalID: ext, CustomerID: who,
		AmountCents: &cents, PurchasedAt: &at}, "t")
	require.NoError(t, err)
}

// A standing gift: run 2 reaches B 40 days after run 1, run 3 reaches C
// 120 days in. Each recipient's window starts at their own gift: B's
// purchase a month before B got anything is not the gift's return, and C's
// the day after C's gift is (the campaign's first window had closed).
func TestStandingGiftWindowIsEachRecipientsOwn(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		ids := addCustomers(t, s, 3, "rg")
		a, b, cc := ids[0], ids[1], ids[2]
		t0 := time.Now().UTC().Add(-300 * 24 * time.Hour).Truncate(time.Second)
		at := func(d int) *time.Time { x := t0.Add(time.Duration(d) * 24 * time.Hour); return &x }
		c := sentGift(t, s, "Monthly thanks", 90, []campaigns.Invitation{
			{CustomerID: a, Run: 1, Status: campaigns.InvDelivered, SentAt: at(0)},
			{CustomerID: b, Run: 2, Status: campaigns.InvDelivered, SentAt: at(40)},
			{CustomerID: cc, Run: 3, Status: campaigns.InvDelivered, SentAt: at(120)},
		})
		recordBuy(t, s, "B-before-gift", b, 50000, *at(10))
		recordBuy(t, s, "C-after-gift", cc, 20000, *at(121))
		recordBuy(t, s, "C-window-end", cc, 7, *at(120 + 90)) // the end is excluded
		roi, err := s.CampaignROI(ctx, c.ID)
		require.NoError(t, err)
		require.EqualValues(t, 20000, roi.RevenueCents, "only purchases after each recipient's own gift count")
		require.Equal(t, *at(0), *roi.WindowFrom, "the window shown starts at the first send")
		require.Equal(t, *at(120 + 90), *roi.WindowTo, "and ends attribution_days after the last")
	})
}

// The holdout has no send of its own: its window starts at its run's first
// send. A run-2 holdout customer's purchase before run 2 went out is not
// compared with the treated; one after it is.
func TestStandingGiftHoldoutWindowIsItsRuns(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		ids := addCustomers(t, s, 11, "rh")
		t0 := time.Now().UTC().Add(-100 * 24 * time.Hour).Truncate(time.Second)
		at := func(d int) time.Time { return t0.Add(time.Duration(d) * 24 * time.Hour) }
		d0, d40 := at(0), at(40)
		invs := []campaigns.Invitation{{CustomerID: ids[0], Run: 1, Status: campaigns.InvDelivered, SentAt: &d0}}
		for k := 1; k <= 5; k++ {
			invs = append(invs, campaigns.Invitation{CustomerID: ids[k], Run: 2, Status: campaigns.InvDelivered, SentAt: &d40})
			invs = append(invs, campaigns.Invitation{CustomerID: ids[5+k], Run: 2, Holdout: true})
		}
		c := sentGift(t, s, "Monthly thanks", 30, invs)
		require.NoError(t, s.DB().Table("campaigns").Where("id = ?", c.ID).Update("holdout_percent", 50).Error)
		_, err := s.AddCost(ctx, c.ID, campaigns.CostInput{Category: "gifts", AmountCents: ptr(int64(1000)), Per: "fixed"}, "t")
		require.NoError(t, err)
		for k := 1; k <= 5; k++ { // treated: 1000..5000 the day after their gift
			recordBuy(t, s, fmt.Sprint("T-", k), ids[k], int64(1000*k), at(41))
		}
		recordBuy(t, s, "H-before-run", ids[6], 90000, at(10)) // before run 2: not the holdout's window
		recordBuy(t, s, "H-in-run", ids[7], 2000, at(45))

		roi, err := s.CampaignROI(ctx, c.ID)
		require.NoError(t, err)
		require.EqualValues(t, 15000, roi.RevenueCents)
		require.Equal(t, 6, roi.Incremental.Treated)
		require.Equal(t, 5, roi.Incremental.Holdout)
		require.True(t, roi.Incremental.Measurable, roi.Incremental.Reason)
		// Treated mean 15000/6 = 2500, holdout 2000/5 = 400:
		// ((2500 - 400) × 6 − 1000) / 1000 = 11.6.
		require.InDelta(t, 11.6, *roi.Incremental.ROI, 1e-9)
	})
}

// A standing gift is in the report of the range it began in (its first
// send), not of every range one of its runs went out in.
func TestROIReportSelectsAGiftByItsFirstSend(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		ids := addCustomers(t, s, 2, "rs")
		t0 := time.Now().UTC().Add(-100 * 24 * time.Hour).Truncate(time.Second)
		t1 := t0.Add(60 * 24 * time.Hour)
		c := sentGift(t, s, "Monthly thanks", 90, []campaigns.Invitation{
			{CustomerID: ids[0], Run: 1, Status: campaigns.InvDelivered, SentAt: &t0},
			{CustomerID: ids[1], Run: 2, Status: campaigns.InvDelivered, SentAt: &t1},
		})
		inReport := func(from, to time.Time) bool {
			rows, err := s.ROIReport(ctx, from, to)
			require.NoError(t, err)
			for _, r := range rows {
				if r.CampaignID == c.ID {
					return true
				}
			}
			return false
		}
		require.True(t, inReport(t0.Add(-time.Hour), t0.Add(time.Hour)), "the range of its first send")
		require.True(t, inReport(t0, t0.Add(time.Second)), "from is inclusive")
		require.False(t, inReport(t1.Add(-time.Hour), time.Now()), "a later run's range")
	})
}

// Referred revenue counts each referred customer once, however many guests
// named them, and not a referred person who is a treated guest of the same
// campaign (her purchases are already its revenue).
func TestReferredRevenueCountsEachPersonOnce(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		ids := addCustomers(t, s, 3, "rd")
		a, b, cc := ids[0], ids[1], ids[2]
		t0 := time.Now().UTC().Add(-10 * 24 * time.Hour).Truncate(time.Second)
		c := sentGift(t, s, "Thanks", 90, []campaigns.Invitation{
			{CustomerID: a, Run: 1, Status: campaigns.InvDelivered, SentAt: &t0},
			{CustomerID: b, Run: 1, Status: campaigns.InvDelivered, SentAt: &t0},
			{CustomerID: cc, Run: 1, Status: campaigns.InvDelivered, SentAt: &t0},
		})
		refer := func(by int64, name, email string) int64 {
			in := campaigns.ReferralInput{ReferrerID: by, CampaignID: &c.ID}
			in.Referred.Name, in.Referred.Email = name, email
			r, _, err := s.RecordReferral(ctx, in, nil)
			require.NoError(t, err)
			return r.ReferredCustomerID
		}
		bc, err := s.Customer(ctx, b)
		require.NoError(t, err)
		refer(a, bc.Name, bc.Email) // B is also a recipient of this gift
		d := refer(a, "Dee", "dee@example.com")
		require.Equal(t, d, refer(cc, "Dee", "dee@example.com"), "C names the same person")
		recordBuy(t, s, "B-1", b, 10000, t0.Add(24*time.Hour))
		recordBuy(t, s, "D-1", d, 3000, t0.Add(24*time.Hour))

		roi, err := s.CampaignROI(ctx, c.ID)
		require.NoError(t, err)
		require.EqualValues(t, 3000, roi.ReferredRevenueCents, "D once; B is treated")
		require.EqualValues(t, 13000, roi.RevenueCents, "B's 10000 once, D's 3000 once")
		require.EqualValues(t, 3, roi.Referrals, "the referrals themselves are all counted")
		report, err := s.ROIReport(ctx, t0.Add(-time.Hour), time.Now())
		require.NoError(t, err)
		require.Len(t, report, 1)
		require.Equal(t, roi.RevenueCents, report[0].RevenueCents)
	})
}

// One $500 order by a customer two gifts reached a week apart is the
// return of both campaigns, but the report's attributed revenue counts it
// once, with the referred customers' purchases; on SQLite also when the
// windows take several queries.
func TestROIReportTotalCountsEachPurchaseOnce(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		ids := addCustomers(t, s, 2, "ov")
		t0 := time.Now().UTC().Add(-20 * 24 * time.Hour).Truncate(time.Second)
		t1 := t0.Add(7 * 24 * time.Hour)
		sentGift(t, s, "G1", 90, []campaigns.Invitation{{CustomerID: ids[0], Run: 1, Status: campaigns.InvDelivered, SentAt: &t0}})
		g2 := sentGift(t, s, "G2", 90, []campaigns.Invitation{{CustomerID: ids[0], Run: 1, Status: campaigns.InvDelivered, SentAt: &t1}})
		in := campaigns.ReferralInput{ReferrerID: ids[0], CampaignID: &g2.ID}
		in.Referred.Name, in.Referred.Email = "Dee", "dee@example.com"
		r, _, err := s.RecordReferral(ctx, in, nil)
		require.NoError(t, err)
		recordBuy(t, s, "OV-1", ids[0], 50000, t1.Add(24*time.Hour))
		recordBuy(t, s, "OV-2", r.ReferredCustomerID, 3000, t1.Add(24*time.Hour))
		recordBuy(t, s, "OV-3", ids[1], 9999, t1.Add(24*time.Hour)) // reached by neither

		for _, rows := range []int{0, 1} {
			s.SetWindowRows(rows) // 1: each campaign's windows in a query of their own on SQLite
			report, total, err := s.ROIReportWithTotal(ctx, t0.Add(-time.Hour), time.Now())
			require.NoError(t, err)
			require.Len(t, report, 2)
			require.EqualValues(t, 50000+53000, report[0].RevenueCents+report[1].RevenueCents, "each campaign's own return")
			require.EqualValues(t, 53000, total, "one order, attributed once; the referred order once")
		}
	})
}

// A cancelled event's non-refundable deposit is still spent: the report
// keeps a cancelled campaign that has costs (with no revenue: nobody
// came), and leaves out one without; a draft stays out.
func TestROIReportKeepsCancelledCampaignsWithCosts(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		addCustomers(t, s, 2, "cx")
		deposit := func(id int64) {
			_, err := s.AddCost(ctx, id, campaigns.CostInput{Category: "venue", AmountCents: ptr(int64(75000)), Per: "fixed",
				Note: "non-refundable deposit"}, "fin")
			require.NoError(t, err)
		}
		cancelled := func(in campaigns.CampaignInput, withCost bool) int64 {
			c, err := s.CreateCampaign(ctx, in, "t")
			require.NoError(t, err)
			if withCost {
				deposit(c.ID)
			}
			_, err = s.Cancel(ctx, c.ID)
			require.NoError(t, err)
			return c.ID
		}
		event := cancelled(eventInput("Called off"), true)
		bare := cancelled(eventInput("Called off, nothing spent"), false)
		gift := cancelled(campaigns.CampaignInput{Kind: campaigns.KindGift, Name: "Never sent", TimeZone: "UTC",
			Gift: &campaigns.GiftFields{Type: "free_upgrade", Fulfilment: "manual"}}, true)
		draft, err := s.CreateCampaign(ctx, eventInput("Still a draft"), "t")
		require.NoError(t, err)
		deposit(draft.ID)

		rows, total, err := s.ROIReportWithTotal(ctx, time.Now().Add(-24*time.Hour), time.Now().Add(60*24*time.Hour))
		require.NoError(t, err)
		got := map[int64]campaigns.ROI{}
		for _, r := range rows {
			got[r.CampaignID] = r
		}
		require.Len(t, got, 2, "the cancelled event and gift with costs")
		for _, id := range []int64{event, gift} {
			require.Contains(t, got, id)
			require.Equal(t, campaigns.StatusCancelled, got[id].Status)
			require.EqualValues(t, 75000, got[id].CostCents)
			require.Zero(t, got[id].RevenueCents)
			require.InDelta(t, -1.0, *got[id].NaiveROI, 1e-9)
		}
		require.NotContains(t, got, bare)
		require.Zero(t, total)
	})
}

// The report's total counts a purchase once however many of a customer's
// windows hold it: windows overlapping, one inside another, one starting
// where another ends (a purchase at that instant is the later one's), and
// apart; nothing in the gap between them or at a window's end.
func TestROIReportTotalMergesEachCustomersWindows(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		ids := addCustomers(t, s, 2, "merge")
		a, b := ids[0], ids[1]
		t0 := time.Now().UTC().Add(-40 * 24 * time.Hour).Truncate(time.Second)
		day := func(d float64) time.Time { return t0.Add(time.Duration(d * float64(24*time.Hour))) }
		gift := func(name string, sent float64, days int, who ...int64) *campaigns.Campaign {
			at := day(sent)
			var invs []campaigns.Invitation
			for _, c := range who {
				invs = append(invs, campaigns.Invitation{CustomerID: c, Run: 1, Status: campaigns.InvDelivered, SentAt: &at})
			}
			return sentGift(t, s, name, days, invs)
		}
		g1 := gift("G1", 0, 10, a, b) // [0, 10)
		gift("G2", 5, 10, a)          // [5, 15): overlaps G1
		gift("G3", 15, 3, a)          // [15, 18): starts where G2 ends
		gift("G4", 25, 2, a)          // [25, 27): apart
		gift("G4 again", 25, 2, a)    // the same window twice
		gift("G5", 6, 1, a)           // [6, 7): inside G1 and G2
		// Rae, referred at G1 (its span, [0, 10)), is also a guest of G6.
		in := campaigns.ReferralInput{ReferrerID: b, CampaignID: &g1.ID}
		in.Referred.Name, in.Referred.Email = "Rae", "rae@example.com"
		r, _, err := s.RecordReferral(ctx, in, nil)
		require.NoError(t, err)
		rae := r.ReferredCustomerID
		gift("G6", 3, 5, rae) // [3, 8)

		recordBuy(t, s, "M-1", a, 100, day(1))      // G1
		recordBuy(t, s, "M-2", a, 200, day(6.5))    // G1, G2 and G5: once
		recordBuy(t, s, "M-3", a, 400, day(15))     // G3 (G2 has ended)
		recordBuy(t, s, "M-4", a, 800, day(20))     // between G3 and G4
		recordBuy(t, s, "M-5", a, 1600, day(26))    // G4, twice over: once
		recordBuy(t, s, "M-6", a, 3200, day(27))    // G4's end: outside
		recordBuy(t, s, "M-7", a, 6400, day(-1))    // before any
		recordBuy(t, s, "M-8", b, 10000, day(2))    // G1
		recordBuy(t, s, "M-9", b, 20000, day(26))   // B had no G4
		recordBuy(t, s, "M-10", rae, 50, day(4))    // referred at G1 and G6's guest: once
		recordBuy(t, s, "M-11", rae, 25, day(9))    // referred at G1 only
		recordBuy(t, s, "M-12", rae, 12, day(11.5)) // neither

		for _, rows := range []int{0, 1} {
			s.SetWindowRows(rows) // 1: each campaign's windows in a query of their own on SQLite
			report, total, err := s.ROIReportWithTotal(ctx, t0.Add(-time.Hour), time.Now())
			require.NoError(t, err)
			require.Len(t, report, 7)
			require.EqualValues(t, 100+200+400+1600+10000+50+25, total)
		}
	})
}

// The counts the report shows, over every run and by group, worked out by
// hand: a gift's deliveries (or sends, where none were delivered) and an
// event's attendees count the treated alone, never the holdout; NPS counts
// every answer given and skips the unanswered; the campaign's page and the
// report agree.
func TestROICountsEveryRunAndOnlyTheTreated(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		cu := addCustomers(t, s, 8, fmt.Sprintf("roicount%d-", time.Now().UnixNano()%1_000_000))
		t0 := time.Now().UTC().Add(-20 * 24 * time.Hour).Truncate(time.Second)
		at := func(d int) *time.Time { v := t0.Add(time.Duration(d) * 24 * time.Hour); return &v }
		inv := func(who int64, run int, holdout bool, st campaigns.InvitationStatus, sent *time.Time, nps *int) campaigns.Invitation {
			return campaigns.Invitation{CustomerID: who, Run: run, Holdout: holdout, Status: st, SentAt: sent, NPSScore: nps, NPSAt: sent}
		}
		gift := sentGift(t, s, "Counted gift", 30, []campaigns.Invitation{
			inv(cu[0], 1, false, campaigns.InvDelivered, at(0), ptr(10)),
			inv(cu[1], 1, false, campaigns.InvSent, at(0), ptr(6)),
			inv(cu[2], 1, true, campaigns.InvDelivered, nil, nil), // held out, yet marked delivered: not a gift
			inv(cu[3], 2, false, campaigns.InvDelivered, at(2), ptr(8)),
			inv(cu[4], 2, false, campaigns.InvDelivered, at(2), nil), // never answered
			inv(cu[5], 2, false, campaigns.InvFailed, at(2), nil),
			inv(cu[6], 3, false, campaigns.InvDelivered, at(4), ptr(3)),
			inv(cu[7], 3, true, campaigns.InvPending, nil, nil),
		})
		sentOnly := sentGift(t, s, "No delivery events", 30, []campaigns.Invitation{
			inv(cu[0], 1, false, campaigns.InvSent, at(1), nil),
			inv(cu[1], 1, false, campaigns.InvSent, at(1), nil),
			inv(cu[2], 2, false, campaigns.InvFailed, at(3), nil),
			inv(cu[3], 2, true, campaigns.InvPending, nil, nil),
		})
		ev, err := s.CreateCampaign(ctx, campaigns.CampaignInput{Kind: campaigns.KindEvent, Name: "Counted evening", TimeZone: "UTC",
			Event: &campaigns.EventFields{Venue: "Museum", StartsAt: at(5), EndsAt: at(6), Capacity: 50}}, "t")
		require.NoError(t, err)
		require.NoError(t, s.DB().Table("campaigns").Where("id = ?", ev.ID).Update("status", campaigns.StatusSent).Error)
		var evInvs []campaigns.Invitation
		for i, x := range []struct {
			run               int
			holdout, attended bool
			nps               *int
		}{{1, false, true, ptr(9)}, {1, false, true, ptr(9)}, {1, false, false, nil},
			{1, true, true, nil}, // held out, yet marked attended (before 81faaac): not an attendee
			{2, false, true, nil}, {2, false, false, ptr(2)}} {
			v := inv(cu[i], x.run, x.holdout, campaigns.InvDelivered, at(1), x.nps)
			if x.holdout {
				v.Status, v.SentAt = campaigns.InvPending, nil
			}
			v.CampaignID, v.Attended, v.RSVP, v.Email = ev.ID, x.attended, "none", fmt.Sprint(cu[i], "@x")
			v.CreatedAt, v.UpdatedAt = t0, t0
			evInvs = append(evInvs, v)
		}
		require.NoError(t, s.DB().Create(&evInvs).Error)

		want := map[int64]struct {
			attendees, gifts int64
			basis            string
			nps              *float64
			answers          int
		}{
			// Gifts: delivered, not held out, in runs 1-3. NPS: 10, 6, 8, 3.
			gift.ID: {gifts: 4, basis: "delivered", nps: ptr(100 * float64(1-2) / 4), answers: 4},
			// Nothing delivered: the sends count.
			sentOnly.ID: {gifts: 2, basis: "sent (no delivery events received)"},
			// Attended, not held out, in runs 1-2. NPS: 9, 9, 2.
			ev.ID: {attendees: 3, nps: ptr(100 * float64(2-1) / 3), answers: 3},
		}
		report, err := s.ROIReport(ctx, t0.Add(-time.Hour), time.Now())
		require.NoError(t, err)
		inReport := map[int64]campaigns.ROI{}
		for _, r := range report {
			inReport[r.CampaignID] = r
		}
		for id, w := range want {
			one, err := s.CampaignROI(ctx, id)
			require.NoError(t, err)
			r, ok := inReport[id]
			require.True(t, ok, "campaign %d is in the report", id)
			for _, got := range []campaigns.ROI{*one, r} {
				require.Equal(t, w.attendees, got.Attendees, "campaign %d", id)
				require.Equal(t, w.gifts, got.Gifts, "campaign %d", id)
				require.Equal(t, w.basis, got.GiftsBasis, "campaign %d", id)
				require.Equal(t, w.answers, got.NPSAnswers, "campaign %d", id)
				if w.nps == nil {
					require.Nil(t, got.NPS, "campaign %d", id)
				} else {
					require.NotNil(t, got.NPS, "campaign %d", id)
					require.InDelta(t, *w.nps, *got.NPS, 1e-9, "campaign %d", id)
				}
			}
		}
	})
}

package app_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
)

func TestFinanceAPIAndCSVAgree(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		e := setup(t, dialect)
		f := e.newSent() // delivered to all three customers, no holdout
		tok := e.tokens[campaigns.RoleFinance]
		r := e.api("POST", fmt.Sprintf("/api/v1/campaigns/%d/costs", f.campaign.ID), tok,
			map[string]any{"category": "venue", "amount_cents": 30000, "per": "fixed", "note": "museum hall"})
		require.Equal(t, http.StatusCreated, r.Status, r.Body)
		r = e.api("POST", fmt.Sprintf("/api/v1/campaigns/%d/costs", f.campaign.ID), tok,
			map[string]any{"category": "catering", "amount_cents": 2500, "per": "attendee"})
		require.Equal(t, http.StatusCreated, r.Status, r.Body)
		r = e.api("POST", fmt.Sprintf("/api/v1/campaigns/%d/costs", f.campaign.ID), tok,
			map[string]any{"category": "", "amount_cents": -1, "per": "yearly"})
		require.Equal(t, http.StatusUnprocessableEntity, r.Status)
		require.Len(t, r.Err(t).Error.Fields, 3)

		// Two guests come; one buys twice inside the window.
		for _, x := range f.claims[:2] {
			r = e.api("POST", fmt.Sprintf("/api/v1/campaigns/%d/checkins", f.campaign.ID), e.tokens[campaigns.RoleRep], map[string]any{"customer_id": x.CustomerID})
			require.Equal(t, http.StatusCreated, r.Status, r.Body)
		}
		buy := map[string]any{"external_id": "ORD-1", "customer_email": f.claims[0].Email, "amount_cents": 50000,
			"purchased_at": time.Now().UTC().Format(time.RFC3339)}
		r = e.api("POST", "/api/v1/purchases", tok, buy)
		require.Equal(t, http.StatusCreated, r.Status, r.Body)
		r = e.api("POST", "/api/v1/purchases", tok, buy)
		require.Equal(t, http.StatusOK, r.Status, "the same order again: 200, nothing changes")

		r = e.api("GET", fmt.Sprintf("/api/v1/campaigns/%d/roi", f.campaign.ID), tok, nil)
		require.Equal(t, http.StatusOK, r.Status, r.Body)
		var roi struct {
			CostCents    int64    `json:"cost_cents"`
			RevenueCents int64    `json:"revenue_cents"`
			NaiveROI     *float64 `json:"naive_roi"`
			Incremental  struct {
				ROI     *float64 `json:"roi"`
				Treated int      `json:"treated"`
				Holdout int      `json:"holdout"`
			} `json:"incremental"`
			Attendees       int64  `json:"attendees"`
			NPS             *int   `json:"nps"`
			CostPerAttendee *int64 `json:"cost_per_attendee_cents"`
		}
		r.Decode(t, &roi)
		// 30000 fixed + 2500 x 2 attendees.
		require.EqualValues(t, 35000, roi.CostCents)
		require.EqualValues(t, 2, roi.Attendees)
		require.EqualValues(t, 17500, *roi.CostPerAttendee)
		require.EqualValues(t, 0, roi.RevenueCents, "bought before the event starts: outside the window")
		require.Nil(t, roi.Incremental.ROI, "no holdout: not measurable")
		require.Nil(t, roi.NPS)
		require.InDelta(t, -1.0, *roi.NaiveROI, 1e-9)

		from := f.campaign.StartsAt.AddDate(0, 0, -1).Format("2006-01-02")
		to := f.campaign.StartsAt.AddDate(0, 0, 1).Format("2006-01-02")
		r = e.api("GET", "/api/v1/reports/roi?format=csv&from="+from+"&to="+to, tok, nil)
		require.Equal(t, http.StatusOK, r.Status, r.Body)
		require.Contains(t, r.Header.Get("Content-Type"), "text/csv")
		rows, err := csv.NewReader(strings.NewReader(r.Body)).ReadAll()
		require.NoError(t, err)
		require.Len(t, rows, 2, "a header and one campaign")
		require.Equal(t, "cost_cents", rows[0][4])
		require.Equal(t, "35000", rows[1][4])
		require.Equal(t, "-1.0000", rows[1][7])
		req := e.apiRequest("GET", "/api/v1/reports/roi?from="+from+"&to="+to, tok, nil)
		req.Header.Set("Accept", "text/csv")
		require.Equal(t, r.Body, e.serve(req).Body, "Accept: text/csv gives the same CSV")
		r = e.api("GET", "/api/v1/reports/roi?from=2026-13-01", tok, nil)
		require.Equal(t, http.StatusUnprocessableEntity, r.Status)

		page := e.signIn(campaigns.RoleFinance).get("/finance?from=" + from + "&to=" + to)
		require.Equal(t, http.StatusOK, page.Status)
		require.Contains(t, page.Body, "<svg class=\"chart\"")
		require.Contains(t, page.Body, "$350.00")
		require.Contains(t, page.Body, "Welch")
	})
}

// One $500 order by a customer two gifts reached a week apart is in both
// campaigns' rows, and once in the page's attributed revenue.
func TestFinancePageTotalCountsEachPurchaseOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		e := setup(t, dialect)
		ctx := context.Background()
		s := e.store
		cu, err := s.UpsertCustomer(ctx, campaigns.CustomerInput{Name: "Ova Lap", Email: e.unique("ova") + "@example.com"},
			campaigns.UpsertMeta{Actor: "t", Source: "t", Rule: campaigns.RuleAPI})
		require.NoError(t, err)
		t0 := time.Now().UTC().Add(-20 * 24 * time.Hour).Truncate(time.Second)
		for i, at := range []time.Time{t0, t0.Add(7 * 24 * time.Hour)} {
			c, err := s.CreateCampaign(ctx, campaigns.CampaignInput{Kind: campaigns.KindGift, Name: fmt.Sprint("Overlap ", i),
				TimeZone: "UTC", Gift: &campaigns.GiftFields{Type: "free_upgrade", Fulfilment: "manual"}}, "t")
			require.NoError(t, err)
			require.NoError(t, s.DB().Table("campaigns").Where("id = ?", c.ID).Update("status", campaigns.StatusSent).Error)
			require.NoError(t, s.DB().Create(&campaigns.Invitation{CampaignID: c.ID, CustomerID: cu.Customer.ID, Email: cu.Customer.Email,
				Run: 1, Status: campaigns.InvDelivered, SentAt: &at, RSVP: "none", CreatedAt: at, UpdatedAt: at}).Error)
		}
		cents, at := int64(50000), t0.Add(8*24*time.Hour)
		_, _, err = s.RecordPurchase(ctx, campaigns.PurchaseInput{ExternalID: "OV-1", CustomerID: cu.Customer.ID, AmountCents: &cents, PurchasedAt: &at}, "t")
		require.NoError(t, err)

		page := e.signIn(campaigns.RoleFinance).get("/finance?from=" + t0.AddDate(0, 0, -1).Format("2006-01-02"))
		require.Equal(t, http.StatusOK, page.Status)
		require.Contains(t, page.Body, "<dt>Attributed revenue</dt><dd>$500.00</dd>")
		require.NotContains(t, page.Body, "$1,000.00")
	})
}

// Five treated who each spent $10 and five held out who spent nothing: the
// estimate stands, but no spread means no 95% interval, and the finance
// and campaign pages say so rather than "4900% (4900% to 4900%)".
func TestFinancePageSaysWhenThereIsNoInterval(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		e := setup(t, dialect)
		ctx := context.Background()
		s := e.store
		t0 := time.Now().UTC().Add(-5 * 24 * time.Hour).Truncate(time.Second)
		c, err := s.CreateCampaign(ctx, campaigns.CampaignInput{Kind: campaigns.KindGift, Name: "Alike", TimeZone: "UTC",
			HoldoutPercent: 50, Gift: &campaigns.GiftFields{Type: "free_upgrade", Fulfilment: "manual"}}, "t")
		require.NoError(t, err)
		require.NoError(t, s.DB().Table("campaigns").Where("id = ?", c.ID).Update("status", campaigns.StatusSent).Error)
		fixed := int64(100)
		_, err = s.AddCost(ctx, c.ID, campaigns.CostInput{Category: "gifts", AmountCents: &fixed, Per: "fixed"}, "t")
		require.NoError(t, err)
		for k := 0; k < 10; k++ {
			cu, err := s.UpsertCustomer(ctx, campaigns.CustomerInput{Name: fmt.Sprint("Alike ", k), Email: e.unique("alike") + "@example.com"},
				campaigns.UpsertMeta{Actor: "t", Source: "t", Rule: campaigns.RuleAPI})
			require.NoError(t, err)
			inv := campaigns.Invitation{CampaignID: c.ID, CustomerID: cu.Customer.ID, Email: cu.Customer.Email, Run: 1,
				Holdout: k >= 5, Status: campaigns.InvPending, RSVP: "none", CreatedAt: t0, UpdatedAt: t0}
			if k < 5 {
				inv.Status, inv.SentAt = campaigns.InvDelivered, &t0
				cents, at := int64(1000), t0.Add(time.Hour)
				_, _, err = s.RecordPurchase(ctx, campaigns.PurchaseInput{ExternalID: e.unique("AL-"), CustomerID: cu.Customer.ID,
					AmountCents: &cents, PurchasedAt: &at}, "t")
				require.NoError(t, err)
			}
			require.NoError(t, s.DB().Create(&inv).Error)
		}
		roi, err := s.CampaignROI(ctx, c.ID)
		require.NoError(t, err)
		require.InDelta(t, 49.0, *roi.Incremental.ROI, 1e-9, "((1000 - 0) x 5 - 100) / 100")
		require.Nil(t, roi.Incremental.Low)
		require.Nil(t, roi.Incremental.High)

		u := e.signIn(campaigns.RoleFinance)
		for _, path := range []string{"/finance?from=" + t0.AddDate(0, 0, -1).Format("2006-01-02"), fmt.Sprintf("/campaigns/%d", c.ID)} {
			page := u.get(path)
			require.Equal(t, http.StatusOK, page.Status, path)
			require.Contains(t, page.Body, "4900%", path)
			require.Contains(t, page.Body, "no 95% interval: every customer in each group spent the same", path)
			require.NotContains(t, page.Body, "4900% to 4900%", path)
		}
	})
}

package campaigns

import (
	"context"
	"time"
)

// Incremental is ROI against the holdout: nil figures when not measurable.
type Incremental struct {
	ROI        *float64 `json:"roi"`
	Low        *float64 `json:"low"`
	High       *float64 `json:"high"`
	Treated    int      `json:"treated"`
	Holdout    int      `json:"holdout"`
	Measurable bool     `json:"measurable"`
	Reason     string   `json:"reason,omitempty"`
}

// ROI is a campaign's return, as finance reads it. Money is cents.
type ROI struct {
	CampaignID            int64       `json:"campaign_id"`
	Name                  string      `json:"name"`
	Kind                  Kind        `json:"kind"`
	Status                Status      `json:"status"`
	WindowFrom            *time.Time  `json:"window_from"`
	WindowTo              *time.Time  `json:"window_to"`
	CostCents             int64       `json:"cost_cents"`
	RevenueCents          int64       `json:"revenue_cents"`
	ReferredRevenueCents  int64       `json:"referred_revenue_cents"`
	NaiveROI              *float64    `json:"naive_roi"`
	Incremental           Incremental `json:"incremental"`
	Attendees             int64       `json:"attendees"`
	Gifts                 int64       `json:"gifts"`
	GiftsBasis            string      `json:"gifts_basis,omitempty"` // delivered, or sent where no delivery events came
	Promotions            int64       `json:"promotions"`
	Referrals             int64       `json:"referrals"`
	NPS                   *float64    `json:"nps"`
	NPSAnswers            int         `json:"nps_answers"`
	CostPerAttendeeCents  *int64      `json:"cost_per_attendee_cents"`
	CostPerPromotionCents *int64      `json:"cost_per_promotion_cents"`
	CostPerReferralCents  *int64      `json:"cost_per_referral_cents"`
}

func per(cost, n int64) *int64 {
	if n <= 0 {
		return nil
	}
	v := (cost + n/2) / n // rounded to the cent
	return &v
}

func fptr(v float64) *float64 { return &v }

// window is when purchases count for a campaign: from the event's start
// (or the gift's first send) to attribution_days after the event's end
// (or that send). Nil before anything happened.
func (s *Store) window(ctx context.Context, c *Campaign) (*time.Time, *time.Time, error) {
	days := time.Duration(c.AttributionDays) * 24 * time.Hour
	if c.Kind == KindEvent {
		if c.StartsAt == nil || c.EndsAt == nil {
			return nil, nil, nil
		}
		to := c.EndsAt.Add(days)
		return c.StartsAt, &to, nil
	}
	// The first send (ORDER BY, not min(): SQLite types only plain columns).
	var first []time.Time
	if err := s.db.WithContext(ctx).Model(&Invitation{}).Where("campaign_id = ? AND sent_at IS NOT NULL", c.ID).
		Order("sent_at").Limit(1).Pluck("sent_at", &first).Error; err != nil {
		return nil, nil, err
	}
	if len(first) == 0 {
		return nil, nil, nil
	}
	from := first[0].UTC()
	to := from.Add(days)
	return &from, &to, nil
}

// CampaignROI computes a campaign's return exactly as PRODUCT.md defines
// it. The treated are those who attended (event) or were delivered the
// gift; revenue is their purchases, and those of people they referred for
// this campaign, inside the attribution window. Incremental ROI compares
// the treated's mean revenue with the holdout's, by Welch's t.
func (s *Store) CampaignROI(ctx context.Context, id int64) (*ROI, error) {
	c, err := s.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	db := s.db.WithContext(ctx)
	out := &ROI{CampaignID: c.ID, Name: c.Name, Kind: c.Kind, Status: c.Status}
	from, to, err := s.window(ctx, c)
	if err != nil {
		return nil, err
	}
	out.WindowFrom, out.WindowTo = from, to

	// Who was treated.
	treated := "i.attended"
	if c.Kind == KindGift {
		var delivered int64
		if err := db.Model(&Invitation{}).Where("campaign_id = ? AND status = 'delivered'", c.ID).Count(&delivered).Error; err != nil {
			return nil, err
		}
		treated, out.GiftsBasis = "i.status = 'delivered'", "delivered"
		if delivered == 0 {
			treated, out.GiftsBasis = "i.status IN ('sent', 'delivered')", "sent (no delivery events received)"
		}
	}
	if err := db.Table("invitations AS i").Where("i.campaign_id = ? AND NOT i.holdout AND "+treated, c.ID).
		Count(&out.Attendees).Error; err != nil {
		return nil, err
	}
	if c.Kind == KindGift {
		out.Gifts, out.Attendees = out.Attendees, 0
	}

	// Per-customer revenue in the window, treated and held out.
	var rows []struct {
		Holdout bool
		Cents   int64
	}
	if from != nil {
		err = db.Table("invitations AS i").
			Select("i.holdout, coalesce(sum(p.amount_cents), 0) AS cents").
			Joins("LEFT JOIN purchases p ON p.customer_id = i.customer_id AND p.purchased_at >= ? AND p.purchased_at < ?", *from, *to).
			Where("i.campaign_id = ? AND (i.holdout OR "+treated+")", c.ID).
			Group("i.id, i.holdout").Scan(&rows).Error
		if err != nil {
			return nil, err
		}
	}
	var tv, hv []int64
	for _, r := range rows {
		if r.Holdout {
			hv = append(hv, r.Cents)
		} else {
			tv = append(tv, r.Cents)
			out.RevenueCents += r.Cents
		}
	}
	if from != nil {
		err = db.Table("referrals AS r").Select("coalesce(sum(p.amount_cents), 0)").
			Joins("JOIN purchases p ON p.customer_id = r.referred_customer_id").
			Where("r.campaign_id = ? AND p.purchased_at >= ? AND p.purchased_at < ?", c.ID, *from, *to).
			Scan(&out.ReferredRevenueCents).Error
		if err != nil {
			return nil, err
		}
		out.RevenueCents += out.ReferredRevenueCents
	}

	// Costs.
	lines, _, err := s.Costs(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	for _, l := range lines {
		switch l.Per {
		case "fixed":
			out.CostCents += l.AmountCents
		case "attendee":
			out.CostCents += l.AmountCents * out.Attendees
		case "gift":
			out.CostCents += l.AmountCents * out.Gifts
		}
	}

	f, err := s.Funnel(ctx, c)
	if err != nil {
		return nil, err
	}
	out.Promotions = f.Promoted
	if err := db.Table("referrals").Where("campaign_id = ?", c.ID).Count(&out.Referrals).Error; err != nil {
		return nil, err
	}
	var scores []int
	if err := db.Model(&Invitation{}).Where("campaign_id = ? AND nps_score IS NOT NULL", c.ID).Pluck("nps_score", &scores).Error; err != nil {
		return nil, err
	}
	if v, ok := NPS(scores); ok {
		out.NPS = fptr(v)
	}
	out.NPSAnswers = len(scores)

	if v, ok := NaiveROI(out.RevenueCents, out.CostCents); ok {
		out.NaiveROI = fptr(v)
	}
	ts, hs := SampleOf(tv), SampleOf(hv)
	out.Incremental = Incremental{Treated: ts.N, Holdout: hs.N}
	switch roi, lo, hi, ok := IncrementalROI(ts, hs, out.CostCents); {
	case c.HoldoutPercent == 0 || hs.N == 0:
		out.Incremental.Reason = "no holdout: not measurable"
	case !ok && out.CostCents <= 0:
		out.Incremental.Reason = "no cost entered"
	case !ok:
		out.Incremental.Reason = "fewer than two customers in the treated or the holdout group"
	default:
		out.Incremental.ROI, out.Incremental.Low, out.Incremental.High = fptr(roi), fptr(lo), fptr(hi)
		out.Incremental.Measurable = true
	}
	if c.Kind == KindEvent {
		out.CostPerAttendeeCents = per(out.CostCents, out.Attendees)
	} else {
		out.CostPerAttendeeCents = per(out.CostCents, out.Gifts)
	}
	out.CostPerPromotionCents = per(out.CostCents, out.Promotions)
	out.CostPerReferralCents = per(out.CostCents, out.Referrals)
	return out, nil
}

// ROIReport computes the ROI of every campaign that ran (or runs) between
// from and to: events by their start, gifts by their first send.
func (s *Store) ROIReport(ctx context.Context, from, to time.Time) ([]ROI, error) {
	var ids []int64
	err := s.db.WithContext(ctx).Model(&Campaign{}).
		Where("status NOT IN ('draft', 'cancelled') AND ((kind = 'event' AND starts_at >= ? AND starts_at < ?) OR (kind = 'gift' AND id IN (SELECT campaign_id FROM invitations WHERE sent_at >= ? AND sent_at < ?)))",
			from, to, from, to).Order("id").Pluck("id", &ids).Error
	if err != nil {
		return nil, err
	}
	out := make([]ROI, 0, len(ids))
	for _, id := range ids {
		r, err := s.CampaignROI(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, nil
}

package campaigns

import (
	"context"
)

// Forecast is what past campaigns suggest for a new one.
type Forecast struct {
	BasedOn              int      `json:"based_on"` // campaigns it is computed from
	Scope                string   `json:"scope"`    // "metro": same kind and metro; "all": same kind anywhere
	Contacted            int64    `json:"contacted"`
	YesRate              *float64 `json:"yes_rate,omitempty"`
	ShowRate             *float64 `json:"show_rate,omitempty"`
	ExpectedYes          *int64   `json:"expected_yes,omitempty"`
	ExpectedAttendees    *int64   `json:"expected_attendees,omitempty"`
	CostPerAttendeeCents *int64   `json:"cost_per_attendee_cents,omitempty"`
	ExpectedCostCents    *int64   `json:"expected_cost_cents,omitempty"`
}

// Forecast applies past campaigns' yes-rate, show-rate and cost per
// attendee (or per gift) to an audience of count customers less the
// holdout: from campaigns of the same kind in the same metros, or of the
// same kind anywhere when fewer than three match.
func (s *Store) Forecast(ctx context.Context, kind Kind, f Filter, holdoutPercent int, count int64) (Forecast, error) {
	var past []Campaign
	if err := s.db.WithContext(ctx).Where("kind = ? AND status IN ? AND runs > 0", kind, []Status{StatusSent, StatusClosed}).
		Order("id DESC").Limit(200).Find(&past).Error; err != nil {
		return Forecast{}, err
	}
	want := map[string]bool{}
	for _, k := range metroKeys(f.Metros) {
		want[k] = true
	}
	var same []Campaign
	for _, c := range past {
		for _, k := range metroKeys(c.Filter().Metros) {
			if want[k] {
				same = append(same, c)
				break
			}
		}
	}
	out := Forecast{Scope: "metro", Contacted: count - holdoutSize(count, holdoutPercent)}
	use := same
	if len(same) < 3 {
		use, out.Scope = past, "all"
	}
	out.BasedOn = len(use)
	if len(use) == 0 {
		return out, nil
	}
	var sent, yes, came, cost int64
	for i := range use {
		fn, err := s.Funnel(ctx, &use[i])
		if err != nil {
			return out, err
		}
		r, err := s.CampaignROI(ctx, use[i].ID)
		if err != nil {
			return out, err
		}
		sent += fn.Sent
		yes += fn.RSVPYes
		if kind == KindGift {
			came += r.Gifts
		} else {
			came += fn.Attended
		}
		cost += r.CostCents
	}
	if sent > 0 && kind == KindEvent {
		yr := float64(yes) / float64(sent)
		out.YesRate = &yr
		ey := int64(yr*float64(out.Contacted) + 0.5)
		out.ExpectedYes = &ey
		if yes > 0 {
			sr := float64(came) / float64(yes)
			out.ShowRate = &sr
			ea := int64(sr*float64(ey) + 0.5)
			out.ExpectedAttendees = &ea
		}
	}
	if kind == KindGift && sent > 0 {
		rate := float64(came) / float64(sent)
		ea := int64(rate*float64(out.Contacted) + 0.5)
		out.ExpectedAttendees = &ea
	}
	if came > 0 {
		cpa := (cost + came/2) / came
		out.CostPerAttendeeCents = &cpa
		if out.ExpectedAttendees != nil {
			ec := cpa * *out.ExpectedAttendees
			out.ExpectedCostCents = &ec
		}
	}
	return out, nil
}

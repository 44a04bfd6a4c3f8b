package campaigns

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rapport/rapport/config"
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

	treat, hold groupStats // per-customer revenue of each group
}

func per(cost, n int64) *int64 {
	if n <= 0 {
		return nil
	}
	v := (cost + n/2) / n // rounded to the cent
	return &v
}

func fptr(v float64) *float64 { return &v }

// roiWindow is a campaign's attribution window and who counts as treated.
type roiWindow struct {
	c        *Campaign
	from, to *time.Time
	basis    string // attended, delivered, sent
}

// windows works out, for many campaigns at once, when purchases count:
// from the event's start (or the gift's first send) to attribution_days
// after the event's end (or that send); and who was treated: those who
// attended, or were delivered the gift (sent, when no delivery events came).
func (s *Store) windows(ctx context.Context, cs []Campaign) ([]roiWindow, error) {
	ids := make([]int64, len(cs))
	for i := range cs {
		ids[i] = cs[i].ID
	}
	// First send and delivered count per gift campaign.
	first := map[int64]time.Time{}
	delivered := map[int64]int64{}
	for start := 0; start < len(ids); start += 1000 {
		chunk := ids[start:min(start+1000, len(ids))]
		if s.dialect == config.Postgres {
			// Both in one pass over the invitations (two took 55-62 and
			// 35-37 ms of a 1,000-campaign report, one after the other).
			var rows []struct {
				CampaignID int64
				SentAt     *time.Time
				Delivered  int64
			}
			if err := s.db.WithContext(ctx).Model(&Invitation{}).
				Select("campaign_id, min(sent_at) AS sent_at, count(*) FILTER (WHERE status = 'delivered') AS delivered").
				Where("campaign_id IN ?", chunk).Group("campaign_id").Scan(&rows).Error; err != nil {
				return nil, err
			}
			for _, r := range rows {
				if r.SentAt != nil {
					first[r.CampaignID] = r.SentAt.UTC()
				}
				if r.Delivered > 0 {
					delivered[r.CampaignID] = r.Delivered
				}
			}
			continue
		}
		var rows []struct {
			CampaignID int64
			SentAt     time.Time
		}
		// SQLite types only plain columns, not min(): the first row of each
		// campaign is kept below.
		q := s.db.WithContext(ctx).Model(&Invitation{}).Where("campaign_id IN ? AND sent_at IS NOT NULL", chunk).
			Order("campaign_id, sent_at").Select("campaign_id, sent_at")
		if err := q.Scan(&rows).Error; err != nil {
			return nil, err
		}
		for i := len(rows) - 1; i >= 0; i-- {
			first[rows[i].CampaignID] = rows[i].SentAt.UTC()
		}

		var dl []struct {
			CampaignID int64
			N          int64
		}
		if err := s.db.WithContext(ctx).Model(&Invitation{}).Select("campaign_id, count(*) AS n").
			Where("campaign_id IN ? AND status = 'delivered'", chunk).Group("campaign_id").Scan(&dl).Error; err != nil {
			return nil, err
		}
		for _, d := range dl {
			delivered[d.CampaignID] = d.N
		}
	}
	out := make([]roiWindow, len(cs))
	for i := range cs {
		c := &cs[i]
		days := time.Duration(c.AttributionDays) * 24 * time.Hour
		w := roiWindow{c: c, basis: "attended"}
		if c.Kind == KindEvent {
			if c.StartsAt != nil && c.EndsAt != nil {
				to := c.EndsAt.Add(days)
				w.from, w.to = c.StartsAt, &to
			}
		} else {
			w.basis = "delivered"
			if delivered[c.ID] == 0 {
				w.basis = "sent"
			}
			if f, ok := first[c.ID]; ok {
				to := f.Add(days)
				w.from, w.to = &f, &to
			}
		}
		out[i] = w
	}
	return out, nil
}

// CampaignROI computes a campaign's return exactly as PRODUCT.md defines
// it: see roiOf.
func (s *Store) CampaignROI(ctx context.Context, id int64) (*ROI, error) {
	c, err := s.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	rs, err := s.roiOf(ctx, []Campaign{*c})
	if err != nil {
		return nil, err
	}
	return &rs[0], nil
}

// groupStats is n, Σ and Σ² of per-customer revenue in cents.
type groupStats struct {
	N          int64
	Sum, SumSq float64
}

func (g groupStats) sample() Sample {
	s := Sample{N: int(g.N)}
	if g.N == 0 {
		return s
	}
	s.Mean = g.Sum / float64(g.N)
	if g.N > 1 {
		s.Var = max(0, (g.SumSq-float64(g.N)*s.Mean*s.Mean)/float64(g.N-1))
	}
	return s
}

// roiOf computes the return of many campaigns with a handful of set-based
// queries. The treated are those who attended (event) or were delivered
// the gift; revenue is their purchases, and those of people they referred
// for the campaign, inside its attribution window. Incremental ROI
// compares the treated's mean revenue per customer with the holdout's, by
// Welch's t.
func (s *Store) roiOf(ctx context.Context, cs []Campaign) ([]ROI, error) {
	ws, err := s.windows(ctx, cs)
	if err != nil {
		return nil, err
	}
	out := make([]ROI, len(cs))
	idx := map[int64]int{}
	var ids []int64
	for i, w := range ws {
		c := w.c
		out[i] = ROI{CampaignID: c.ID, Name: c.Name, Kind: c.Kind, Status: c.Status, WindowFrom: w.from, WindowTo: w.to}
		if c.Kind == KindGift {
			out[i].GiftsBasis = map[string]string{"delivered": "delivered", "sent": "sent (no delivery events received)"}[w.basis]
		}
		idx[c.ID] = i
		ids = append(ids, c.ID)
	}
	// Revenue (the bulk of the work: one purchases-index lookup per guest)
	// and the counts are independent. On PostgreSQL they run at once on
	// separate connections, the revenue in two halves. Chunks also keep
	// each query under the databases' parameter limits.
	chunkSize, g := 500, new(errgroup.Group)
	g.SetLimit(1)
	if s.dialect == config.Postgres {
		chunkSize = min(10000, max(50, (len(ws)+1)/2))
		g.SetLimit(-1)
	}
	type revenue struct {
		groups []revenueGroup
		refs   []referredRevenue
	}
	var revs []*revenue
	for start := 0; start < len(ws); start += chunkSize {
		part, rv := ws[start:min(start+chunkSize, len(ws))], &revenue{}
		revs = append(revs, rv)
		g.Go(func() (err error) {
			rv.groups, rv.refs, err = s.windowRevenue(ctx, part)
			return err
		})
	}
	g.Go(func() error { return s.roiCounts(ctx, ids, ws, idx, out) })
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, rv := range revs {
		for _, g := range rv.groups {
			r := &out[idx[g.CampaignID]]
			st := groupStats{N: g.N, Sum: g.Sum, SumSq: g.SumSq}
			if g.Holdout {
				r.Incremental.Holdout = int(g.N)
				r.hold = st
			} else {
				r.treat = st
				r.RevenueCents += int64(g.Sum)
			}
		}
		for _, x := range rv.refs {
			r := &out[idx[x.CampaignID]]
			r.ReferredRevenueCents = x.Cents
			r.RevenueCents += x.Cents
		}
	}
	for i := range out {
		r := &out[i]
		c := ws[i].c
		if v, ok := NaiveROI(r.RevenueCents, r.CostCents); ok {
			r.NaiveROI = fptr(v)
		}
		ts, hs := r.treat.sample(), r.hold.sample()
		r.Incremental.Treated, r.Incremental.Holdout = ts.N, hs.N
		switch roi, lo, hi, ok := IncrementalROI(ts, hs, r.CostCents); {
		case c.HoldoutPercent == 0 || hs.N == 0:
			r.Incremental.Reason = "no holdout: not measurable"
		case !ok && r.CostCents <= 0:
			r.Incremental.Reason = "no cost entered"
		case !ok:
			r.Incremental.Reason = "fewer than two customers in the treated or the holdout group"
		default:
			r.Incremental.ROI, r.Incremental.Low, r.Incremental.High = fptr(roi), fptr(lo), fptr(hi)
			r.Incremental.Measurable = true
		}
		if c.Kind == KindEvent {
			r.CostPerAttendeeCents = per(r.CostCents, r.Attendees)
		} else {
			r.CostPerAttendeeCents = per(r.CostCents, r.Gifts)
		}
		r.CostPerPromotionCents = per(r.CostCents, r.Promotions)
		r.CostPerReferralCents = per(r.CostCents, r.Referrals)
	}
	return out, nil
}

// roiCounts fills in each campaign's treated count (attendees or gifts),
// costs, promotions, referrals and NPS.
func (s *Store) roiCounts(ctx context.Context, ids []int64, ws []roiWindow, idx map[int64]int, out []ROI) error {
	db := s.db.WithContext(ctx)
	for start := 0; start < len(ids); start += 1000 {
		chunk := ids[start:min(start+1000, len(ids))]
		var att []struct {
			CampaignID int64
			Attended   int64
			Delivered  int64
			Sent       int64
		}
		if err := db.Model(&Invitation{}).Select(`campaign_id,
			coalesce(sum(CASE WHEN attended AND NOT holdout THEN 1 ELSE 0 END), 0) AS attended,
			coalesce(sum(CASE WHEN status = 'delivered' AND NOT holdout THEN 1 ELSE 0 END), 0) AS delivered,
			coalesce(sum(CASE WHEN status IN ('sent', 'delivered') AND NOT holdout THEN 1 ELSE 0 END), 0) AS sent`).
			Where("campaign_id IN ?", chunk).Group("campaign_id").Scan(&att).Error; err != nil {
			return err
		}
		for _, a := range att {
			i := idx[a.CampaignID]
			switch ws[i].basis {
			case "attended":
				out[i].Attendees = a.Attended
			case "delivered":
				out[i].Gifts = a.Delivered
			case "sent":
				out[i].Gifts = a.Sent
			}
		}
		var lines []CostLine
		if err := db.Where("campaign_id IN ? AND deleted_at IS NULL", chunk).Find(&lines).Error; err != nil {
			return err
		}
		for _, l := range lines {
			r := &out[idx[l.CampaignID]]
			switch l.Per {
			case "fixed":
				r.CostCents += l.AmountCents
			case "attendee":
				r.CostCents += l.AmountCents * r.Attendees
			case "gift":
				r.CostCents += l.AmountCents * r.Gifts
			}
		}
		sources := make([]string, len(chunk))
		for i, id := range chunk {
			sources[i] = CampaignSource(id)
		}
		var promo []struct {
			Source string
			N      int64
		}
		if err := db.Model(&LedgerEntry{}).Select("source, count(DISTINCT customer_id) AS n").
			Where("source IN ?", sources).Group("source").Scan(&promo).Error; err != nil {
			return err
		}
		for _, p := range promo {
			var id int64
			if _, err := fmt.Sscanf(p.Source, "campaign:%d", &id); err == nil {
				out[idx[id]].Promotions = p.N
			}
		}
		var refn []struct {
			CampaignID int64
			N          int64
		}
		if err := db.Table("referrals").Select("campaign_id, count(*) AS n").Where("campaign_id IN ?", chunk).
			Group("campaign_id").Scan(&refn).Error; err != nil {
			return err
		}
		for _, r := range refn {
			out[idx[r.CampaignID]].Referrals = r.N
		}
		var scores []struct {
			CampaignID int64
			Score      int
		}
		if err := db.Model(&Invitation{}).Select("campaign_id, nps_score AS score").
			Where("campaign_id IN ? AND nps_score IS NOT NULL", chunk).Scan(&scores).Error; err != nil {
			return err
		}
		byCampaign := map[int64][]int{}
		for _, x := range scores {
			byCampaign[x.CampaignID] = append(byCampaign[x.CampaignID], x.Score)
		}
		for id, sc := range byCampaign {
			r := &out[idx[id]]
			if v, ok := NPS(sc); ok {
				r.NPS, r.NPSAnswers = fptr(v), len(sc)
			}
		}
	}
	return nil
}

// revenueGroup is the purchases in a window of one group (treated or
// holdout) of a campaign: per-customer count, sum and sum of squares.
type revenueGroup struct {
	CampaignID int64
	Holdout    bool
	N          int64
	Sum        float64
	SumSq      float64
}

// referredRevenue is what customers referred at a campaign bought.
type referredRevenue struct {
	CampaignID int64
	Cents      int64
}

// windowRevenue sums purchases inside each window, per group, and the
// referred customers' purchases.
func (s *Store) windowRevenue(ctx context.Context, ws []roiWindow) ([]revenueGroup, []referredRevenue, error) {
	// The windows: (campaign, from, to, basis). On PostgreSQL they go in as
	// four arrays, planned each time (force_custom_plan, below) so that
	// the planner counts them as it would VALUES rows: as a VALUES list of
	// 2,000 parameters the statement took 17-20 ms to parse and 14-23 ms to
	// bind, ahead of its few hundred.
	var ids []int64
	var froms, tos []time.Time
	var bases []string
	for _, w := range ws {
		if w.from == nil {
			continue
		}
		ids, froms, tos, bases = append(ids, w.c.ID), append(froms, *w.from), append(tos, *w.to), append(bases, w.basis)
	}
	if len(ids) == 0 {
		return nil, nil, nil
	}
	db := s.db.WithContext(ctx)
	if s.dialect == config.Postgres {
		// The revenue query hashes every purchase inside the windows; with
		// the default 4 MB of work_mem it sorted on disk (1,000 campaigns ×
		// 1M purchases: 610 → 470 ms for that query).
		tx := db.Begin(&sql.TxOptions{ReadOnly: true})
		if tx.Error != nil {
			return nil, nil, tx.Error
		}
		defer tx.Rollback()
		if err := tx.Exec("SET LOCAL work_mem = '64MB'").Error; err != nil {
			return nil, nil, err
		}
		// The per-guest lookups cost more than JIT's threshold, which then
		// spent 20 ms compiling a query that runs in a few hundred.
		if err := tx.Exec("SET LOCAL jit = off").Error; err != nil {
			return nil, nil, err
		}
		if err := tx.Exec("SET LOCAL plan_cache_mode = force_custom_plan").Error; err != nil {
			return nil, nil, err
		}
		db = tx
	}
	var cte string
	var args []any
	if s.dialect == config.Postgres {
		cte = "WITH w(campaign_id, wfrom, wto, basis) AS (SELECT * FROM unnest(?::bigint[], ?::timestamptz[], ?::timestamptz[], ?::text[])) "
		args = []any{pgArray{ids}, pgArray{froms}, pgArray{tos}, pgArray{bases}}
	} else {
		vals := make([]string, len(ids))
		for i := range ids {
			vals[i] = "(?, ?, ?, ?)"
			args = append(args, ids[i], froms[i], tos[i], bases[i])
		}
		cte = "WITH w(campaign_id, wfrom, wto, basis) AS (VALUES " + strings.Join(vals, ", ") + ") "
	}
	treated := "((w.basis = 'attended' AND i.attended) OR (w.basis = 'delivered' AND i.status = 'delivered') OR " +
		"(w.basis = 'sent' AND i.status IN ('sent', 'delivered')))"
	var groups []revenueGroup
	// Each guest's purchases in the window, then the groups' sums.
	rev := `SELECT i.campaign_id, i.holdout, i.id, coalesce(sum(p.amount_cents), 0) AS cents
		FROM invitations i JOIN w ON w.campaign_id = i.campaign_id
		LEFT JOIN purchases p ON p.customer_id = i.customer_id AND p.purchased_at >= w.wfrom AND p.purchased_at < w.wto
		WHERE i.holdout OR (NOT i.holdout AND ` + treated + `)
		GROUP BY i.campaign_id, i.holdout, i.id`
	if s.dialect == config.Postgres {
		// A LATERAL sum per guest puts the window into the purchases index
		// condition and skips regrouping every purchase by guest (1,000
		// campaigns × 1M purchases: 700-870 → 350-410 ms for this query).
		// SQLite has no LATERAL.
		rev = `SELECT i.campaign_id, i.holdout, coalesce(p.cents, 0) AS cents
		FROM invitations i JOIN w ON w.campaign_id = i.campaign_id
		LEFT JOIN LATERAL (SELECT sum(p.amount_cents) AS cents FROM purchases p
			WHERE p.customer_id = i.customer_id AND p.purchased_at >= w.wfrom AND p.purchased_at < w.wto) p ON true
		WHERE i.holdout OR (NOT i.holdout AND ` + treated + `)`
	}
	q := cte + `, rev AS (` + rev + `)
		SELECT campaign_id, holdout, count(*) AS n, sum(cents) AS sum, sum(cents * cents) AS sum_sq FROM rev GROUP BY campaign_id, holdout`
	if err := db.Raw(q, args...).Scan(&groups).Error; err != nil {
		return nil, nil, err
	}
	var refs []referredRevenue
	if err := db.Raw(cte+`SELECT r.campaign_id, coalesce(sum(p.amount_cents), 0) AS cents FROM referrals r
		JOIN w ON w.campaign_id = r.campaign_id JOIN purchases p ON p.customer_id = r.referred_customer_id
		AND p.purchased_at >= w.wfrom AND p.purchased_at < w.wto GROUP BY r.campaign_id`, args...).Scan(&refs).Error; err != nil {
		return nil, nil, err
	}
	return groups, refs, nil
}

// ROIReport computes the ROI of every campaign that ran (or runs) between
// from and to: events by their start, gifts by their first send.
func (s *Store) ROIReport(ctx context.Context, from, to time.Time) ([]ROI, error) {
	var cs []Campaign
	err := s.db.WithContext(ctx).
		Where("status NOT IN ('draft', 'cancelled') AND ((kind = 'event' AND starts_at >= ? AND starts_at < ?) OR (kind = 'gift' AND id IN (SELECT campaign_id FROM invitations WHERE sent_at >= ? AND sent_at < ?)))",
			from, to, from, to).Order("id").Find(&cs).Error
	if err != nil {
		return nil, err
	}
	return s.roiOf(ctx, cs)
}

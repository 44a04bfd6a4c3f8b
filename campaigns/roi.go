package campaigns

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"

	"github.com/rapport/rapport/config"
)

// Incremental is ROI against the holdout: nil figures when not measurable,
// and Low/High nil when the estimate has no 95% interval (Reason says why).
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
// from..to is the whole span in which a purchase can count (shown on the
// report); runs hold each run's window, which is what revenue uses.
type roiWindow struct {
	c        *Campaign
	from, to *time.Time
	basis    string // attended, delivered, sent
	runs     []runWindow
	counts   runCounts // over all runs
}

// runWindow is one run's window. An event's is the event's (from its start
// to attribution_days after its end) for every run. A gift's is anchored
// at each recipient's own send (own): a standing gift reaches people
// months apart, and a purchase before someone's gift is not its return.
// from is the run's first send, the holdout's anchor (they are not sent
// anything, so their window starts when their run went out).
type runWindow struct {
	run      int
	from, to time.Time
	own      bool
	days     int
}

// runRow is a run's first and last send (T: a time, or SQLite's text)
// and its counts.
type runRow[T any] struct {
	CampaignID  int64
	Run         int
	First, Last T
	Counts      runCounts `gorm:"embedded"`
}

type runSends = runRow[*time.Time]

// runCounts are a run's delivered count (holdout included), its treated
// group's attendees, deliveries and sends, and its survey answers (count,
// promoters 9-10, detractors 0-6); added up, a campaign's.
type runCounts struct {
	Delivered                               int64
	Attended, TreatedDelivered, TreatedSent int64
	NPSAnswers, NPSPromoters, NPSDetractors int64
}

func (g *runCounts) add(r runCounts) {
	g.Delivered += r.Delivered
	g.Attended += r.Attended
	g.TreatedDelivered += r.TreatedDelivered
	g.TreatedSent += r.TreatedSent
	g.NPSAnswers += r.NPSAnswers
	g.NPSPromoters += r.NPSPromoters
	g.NPSDetractors += r.NPSDetractors
}

// runSendsSQL is what windows reads per run, in one pass over the
// invitations.
const runSendsSQL = `campaign_id, run, min(sent_at) AS first, max(sent_at) AS last,
	coalesce(sum(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END), 0) AS delivered,
	coalesce(sum(CASE WHEN attended AND NOT holdout THEN 1 ELSE 0 END), 0) AS attended,
	coalesce(sum(CASE WHEN status = 'delivered' AND NOT holdout THEN 1 ELSE 0 END), 0) AS treated_delivered,
	coalesce(sum(CASE WHEN status IN ('sent', 'delivered') AND NOT holdout THEN 1 ELSE 0 END), 0) AS treated_sent,
	count(nps_score) AS nps_answers,
	coalesce(sum(CASE WHEN nps_score >= 9 THEN 1 ELSE 0 END), 0) AS nps_promoters,
	coalesce(sum(CASE WHEN nps_score <= 6 THEN 1 ELSE 0 END), 0) AS nps_detractors`

// sqliteTime reads a time SQLite returns as text (min() and max() carry no
// column type): the driver's format, or RFC 3339.
func sqliteTime(v *string) (*time.Time, error) {
	if v == nil {
		return nil, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05.999999999-07:00", time.RFC3339Nano} {
		if t, err := time.Parse(layout, *v); err == nil {
			t = t.UTC()
			return &t, nil
		}
	}
	return nil, fmt.Errorf("unreadable time %q in invitations.sent_at", *v)
}

// windows works out, for many campaigns at once, when purchases count and
// who was treated: those who attended, or were delivered the gift (sent,
// when no delivery events came). See runWindow.
func (s *Store) windows(ctx context.Context, cs []Campaign) ([]roiWindow, error) {
	ids := make([]int64, len(cs))
	for i := range cs {
		ids[i] = cs[i].ID
	}
	// Each run's first and last send, delivered count and the counts the
	// report shows, in one pass over the invitations (two passes took 55-62
	// and 35-37 ms of a 1,000-campaign report on PostgreSQL, one after the
	// other; the counts, a third pass, ran beside the revenue).
	var sends []runSends
	for start := 0; start < len(ids); start += 1000 {
		chunk := ids[start:min(start+1000, len(ids))]
		q := s.db.WithContext(ctx).Model(&Invitation{}).Select(runSendsSQL).
			Where("campaign_id IN ?", chunk).Group("campaign_id, run")
		if s.dialect == config.Postgres {
			var rows []runSends
			if err := q.Scan(&rows).Error; err != nil {
				return nil, err
			}
			for _, r := range rows {
				if r.First != nil {
					*r.First, *r.Last = r.First.UTC(), r.Last.UTC()
				}
				sends = append(sends, r)
			}
			continue
		}
		var rows []runRow[*string]
		if err := q.Scan(&rows).Error; err != nil {
			return nil, err
		}
		for _, r := range rows {
			first, err := sqliteTime(r.First)
			if err != nil {
				return nil, err
			}
			last, err := sqliteTime(r.Last)
			if err != nil {
				return nil, err
			}
			sends = append(sends, runSends{CampaignID: r.CampaignID, Run: r.Run, First: first, Last: last, Counts: r.Counts})
		}
	}
	byCampaign := map[int64][]runSends{}
	for _, r := range sends {
		byCampaign[r.CampaignID] = append(byCampaign[r.CampaignID], r)
	}
	out := make([]roiWindow, len(cs))
	for i := range cs {
		c := &cs[i]
		days := time.Duration(c.AttributionDays) * 24 * time.Hour
		w := roiWindow{c: c, basis: "attended"}
		runs := byCampaign[c.ID]
		for _, r := range runs {
			w.counts.add(r.Counts)
		}
		if c.Kind == KindEvent {
			if c.StartsAt != nil && c.EndsAt != nil {
				from, to := c.StartsAt.UTC(), c.EndsAt.Add(days).UTC()
				w.from, w.to = &from, &to
				for _, r := range runs {
					w.runs = append(w.runs, runWindow{run: r.Run, from: from, to: to})
				}
			}
			out[i] = w
			continue
		}
		var delivered int64
		for _, r := range runs {
			delivered += r.Counts.Delivered
			if r.First == nil {
				continue // nothing of this run went out: no window
			}
			w.runs = append(w.runs, runWindow{run: r.Run, from: *r.First, to: r.First.Add(days), own: true, days: c.AttributionDays})
			if w.from == nil || r.First.Before(*w.from) {
				w.from = r.First
			}
			if to := r.Last.Add(days); w.to == nil || to.After(*w.to) {
				w.to = &to
			}
		}
		w.basis = "delivered"
		if delivered == 0 {
			w.basis = "sent"
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
	return s.roiOfWindows(ctx, ws)
}

// sqliteWindowRows is how many runs' windows one query takes on SQLite.
const sqliteWindowRows = 3000

// windowChunks splits windows into chunks of at most size campaigns and,
// on SQLite, 3,000 runs: each run is a VALUES row of 9 parameters, and a
// standing gift's many runs count against the 32,766-parameter limit.
func (s *Store) windowChunks(ws []roiWindow, size int) [][]roiWindow {
	maxRows := s.windowRows
	if maxRows == 0 {
		maxRows = sqliteWindowRows
	}
	var out [][]roiWindow
	for start := 0; start < len(ws); {
		end, rows := start, 0
		for end < len(ws) && end-start < size && (s.dialect == config.Postgres || end == start || rows+len(ws[end].runs) <= maxRows) {
			rows += len(ws[end].runs)
			end++
		}
		out = append(out, ws[start:end])
		start = end
	}
	return out
}

// roiOfWindows is roiOf for campaigns whose windows are worked out.
func (s *Store) roiOfWindows(ctx context.Context, ws []roiWindow) ([]ROI, error) {
	out := make([]ROI, len(ws))
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
	for _, part := range s.windowChunks(ws, chunkSize) {
		rv := &revenue{}
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
		switch roi, ci, ok := IncrementalROI(ts, hs, r.CostCents); {
		case c.HoldoutPercent == 0 || hs.N == 0:
			r.Incremental.Reason = "no holdout: not measurable"
		case !ok && r.CostCents <= 0:
			r.Incremental.Reason = "no cost entered"
		case !ok:
			r.Incremental.Reason = "fewer than two customers in the treated or the holdout group"
		default:
			// The estimate stands; its interval only with enough customers
			// whose revenue varies (see IncrementalROI).
			r.Incremental.ROI, r.Incremental.Measurable = fptr(roi), true
			switch {
			case ci != nil:
				r.Incremental.Low, r.Incremental.High = fptr(ci.Low), fptr(ci.High)
			case ts.N < MinIntervalGroup || hs.N < MinIntervalGroup:
				r.Incremental.Reason = fmt.Sprintf("no 95%% interval: fewer than %d customers in the treated or the holdout group", MinIntervalGroup)
			default:
				r.Incremental.Reason = "no 95% interval: every customer in each group spent the same"
			}
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
	for i, w := range ws {
		switch w.basis {
		case "attended":
			out[i].Attendees = w.counts.Attended
		case "delivered":
			out[i].Gifts = w.counts.TreatedDelivered
		case "sent":
			out[i].Gifts = w.counts.TreatedSent
		}
		if v, ok := npsOf(w.counts.NPSAnswers, w.counts.NPSPromoters, w.counts.NPSDetractors); ok {
			out[i].NPS, out[i].NPSAnswers = fptr(v), int(w.counts.NPSAnswers)
		}
	}
	db := s.db.WithContext(ctx)
	for start := 0; start < len(ids); start += 1000 {
		chunk := ids[start:min(start+1000, len(ids))]
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
		promo, err := promotedBy(db, sources)
		if err != nil {
			return err
		}
		for i, id := range chunk {
			out[idx[id]].Promotions = promo[sources[i]]
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

// windowSQL is the windows as a CTE w(campaign_id, run, wfrom, wto, own,
// days, basis, cfrom, cto), one row per run (cfrom..cto is the campaign's
// whole span, for its referred customers), and each guest's bounds lo..hi
// over invitations i joined to w.
type windowSQL struct {
	cte     string
	args    []any
	lo, hi  string
	treated func(w string) string // i is treated, by the basis in w
}

// windowSQL builds the windows' CTE; false when no window is open.
func (s *Store) windowSQL(ws []roiWindow) (windowSQL, bool) {
	// On PostgreSQL the windows go in as arrays, planned each time
	// (force_custom_plan, see revenueDB) so that the planner counts them as
	// it would VALUES rows: as a VALUES list of 2,000 parameters the
	// statement took 17-20 ms to parse and 14-23 ms to bind, ahead of its
	// few hundred.
	var ids, runs, days []int64
	var froms, tos, cfroms, ctos []time.Time
	var owns []bool
	var bases []string
	for _, w := range ws {
		for _, r := range w.runs {
			ids, runs, days = append(ids, w.c.ID), append(runs, int64(r.run)), append(days, int64(r.days))
			froms, tos, cfroms, ctos = append(froms, r.from), append(tos, r.to), append(cfroms, *w.from), append(ctos, *w.to)
			owns, bases = append(owns, r.own), append(bases, w.basis)
		}
	}
	if len(ids) == 0 {
		return windowSQL{}, false
	}
	// A gift recipient's window runs from their own send (see runWindow);
	// the holdout's, and an event's, is the run's. Days are added as 24
	// hours (not calendar days in the session's zone), as in Go.
	own := "w.own AND NOT i.holdout AND i.sent_at IS NOT NULL"
	q := windowSQL{
		lo: "CASE WHEN " + own + " THEN i.sent_at ELSE w.wfrom END",
		hi: "CASE WHEN " + own + " THEN i.sent_at + w.days * interval '24 hours' ELSE w.wto END",
		treated: func(w string) string {
			return "((" + w + ".basis = 'attended' AND i.attended) OR (" + w + ".basis = 'delivered' AND i.status = 'delivered') OR " +
				"(" + w + ".basis = 'sent' AND i.status IN ('sent', 'delivered')))"
		},
	}
	if s.dialect == config.Postgres {
		q.cte = "WITH w(campaign_id, run, wfrom, wto, own, days, basis, cfrom, cto) AS (SELECT * FROM unnest(?::bigint[], ?::bigint[], " +
			"?::timestamptz[], ?::timestamptz[], ?::boolean[], ?::bigint[], ?::text[], ?::timestamptz[], ?::timestamptz[])) "
		q.args = []any{pgArray{ids}, pgArray{runs}, pgArray{froms}, pgArray{tos}, pgArray{owns}, pgArray{days}, pgArray{bases},
			pgArray{cfroms}, pgArray{ctos}}
		return q, true
	}
	vals := make([]string, len(ids))
	for i := range ids {
		vals[i] = "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
		q.args = append(q.args, ids[i], runs[i], froms[i], tos[i], owns[i], days[i], bases[i], cfroms[i], ctos[i])
	}
	q.cte = "WITH w(campaign_id, run, wfrom, wto, own, days, basis, cfrom, cto) AS (VALUES " + strings.Join(vals, ", ") + ") "
	// Times are stored as UTC text ("2006-01-02 15:04:05.999999999+00:00"),
	// compared as text: the end keeps the send's fraction and zone so that
	// it sorts exactly as the driver writes that instant.
	q.hi = "CASE WHEN " + own + " THEN strftime('%Y-%m-%d %H:%M:%S', i.sent_at, '+' || w.days || ' days') || substr(i.sent_at, 20) ELSE w.wto END"
	return q, true
}

// referredSQL follows a windowSQL's CTE: wc, each campaign's span, and rc,
// its referred customers, each once however many guests named them, less
// those who are themselves treated by the campaign (their purchases are
// already its revenue).
func (q windowSQL) referredSQL() string {
	return `, wc AS (SELECT DISTINCT campaign_id, basis, cfrom, cto FROM w),
		rc AS (SELECT DISTINCT r.campaign_id, r.referred_customer_id AS customer_id FROM referrals r
			JOIN wc ON wc.campaign_id = r.campaign_id
			WHERE NOT EXISTS (SELECT 1 FROM invitations i WHERE i.campaign_id = r.campaign_id
				AND i.customer_id = r.referred_customer_id AND NOT i.holdout AND ` + q.treated("wc") + `))`
}

// revenueDB is where the revenue queries run: on PostgreSQL a read-only
// transaction with settings for them; done ends it.
func (s *Store) revenueDB(ctx context.Context) (db *gorm.DB, done func(), err error) {
	db = s.db.WithContext(ctx)
	if s.dialect != config.Postgres {
		return db, func() {}, nil
	}
	tx := db.Begin(&sql.TxOptions{ReadOnly: true})
	if tx.Error != nil {
		return nil, nil, tx.Error
	}
	for _, set := range []string{
		// The revenue query hashes every purchase inside the windows; with
		// the default 4 MB of work_mem it sorted on disk (1,000 campaigns ×
		// 1M purchases: 610 → 470 ms for that query).
		"SET LOCAL work_mem = '64MB'",
		// The per-guest lookups cost more than JIT's threshold, which then
		// spent 20 ms compiling a query that runs in a few hundred.
		"SET LOCAL jit = off",
		"SET LOCAL plan_cache_mode = force_custom_plan",
	} {
		if err := tx.Exec(set).Error; err != nil {
			tx.Rollback()
			return nil, nil, err
		}
	}
	return tx, func() { tx.Rollback() }, nil
}

// windowRevenue sums purchases inside each window, per group, and the
// referred customers' purchases.
func (s *Store) windowRevenue(ctx context.Context, ws []roiWindow) ([]revenueGroup, []referredRevenue, error) {
	q, ok := s.windowSQL(ws)
	if !ok {
		return nil, nil, nil
	}
	db, done, err := s.revenueDB(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer done()
	var groups []revenueGroup
	// Each guest's purchases in the window, then the groups' sums.
	rev := `SELECT i.campaign_id, i.holdout, i.id, coalesce(sum(p.amount_cents), 0) AS cents
		FROM invitations i JOIN w ON w.campaign_id = i.campaign_id AND w.run = i.run
		LEFT JOIN purchases p ON p.customer_id = i.customer_id AND p.purchased_at >= ` + q.lo + ` AND p.purchased_at < ` + q.hi + `
		WHERE i.holdout OR (NOT i.holdout AND ` + q.treated("w") + `)
		GROUP BY i.campaign_id, i.holdout, i.id`
	cte := q.cte
	if s.dialect == config.Postgres {
		// A LATERAL sum per guest puts the window into the purchases index
		// condition and skips regrouping every purchase by guest (1,000
		// campaigns × 1M purchases: 700-870 → 350-410 ms for this query).
		// The guests go to it in customer order, so that one lookup finds
		// the index pages the one before it read still in the CPU's cache
		// (half of that report in psql: 297-316 → 243-250 ms). SQLite has
		// no LATERAL.
		cte += `, g AS MATERIALIZED (SELECT i.campaign_id, i.holdout, i.customer_id, ` + q.lo + ` AS lo, ` + q.hi + ` AS hi
			FROM invitations i JOIN w ON w.campaign_id = i.campaign_id AND w.run = i.run
			WHERE i.holdout OR (NOT i.holdout AND ` + q.treated("w") + `)
			ORDER BY i.customer_id)`
		rev = `SELECT g.campaign_id, g.holdout, coalesce(p.cents, 0) AS cents FROM g
		LEFT JOIN LATERAL (SELECT sum(p.amount_cents) AS cents FROM purchases p
			WHERE p.customer_id = g.customer_id AND p.purchased_at >= g.lo AND p.purchased_at < g.hi) p ON true`
	}
	if err := db.Raw(cte+`, rev AS (`+rev+`)
		SELECT campaign_id, holdout, count(*) AS n, sum(cents) AS sum, sum(cents * cents) AS sum_sq FROM rev GROUP BY campaign_id, holdout`,
		q.args...).Scan(&groups).Error; err != nil {
		return nil, nil, err
	}
	// Referred customers' purchases, over the campaign's whole span.
	var refs []referredRevenue
	if err := db.Raw(q.cte+q.referredSQL()+`
		SELECT rc.campaign_id, coalesce(sum(p.amount_cents), 0) AS cents FROM rc JOIN wc ON wc.campaign_id = rc.campaign_id
		JOIN purchases p ON p.customer_id = rc.customer_id AND p.purchased_at >= wc.cfrom AND p.purchased_at < wc.cto
		GROUP BY rc.campaign_id`, q.args...).Scan(&refs).Error; err != nil {
		return nil, nil, err
	}
	return groups, refs, nil
}

// reportCampaigns are the campaigns that ran (or run) between from and to:
// events by their start, gifts by their first send. A standing gift is in
// the report of the range it began in, once, with all its runs (selected
// by any send, it was in every quarter's report, each time with its whole
// revenue). A cancelled campaign is in it when it has costs (a deposit
// paid is spent whether or not the event happens); a cancelled gift that
// sent nothing by when it was to be sent, or else created.
func (s *Store) reportCampaigns(ctx context.Context, from, to time.Time) ([]Campaign, error) {
	var cs []Campaign
	err := s.db.WithContext(ctx).
		Where(`status <> 'draft' AND (status <> 'cancelled' OR EXISTS (SELECT 1 FROM cost_lines l
			WHERE l.campaign_id = campaigns.id AND l.deleted_at IS NULL))`).
		Where(`(kind = 'event' AND starts_at >= ? AND starts_at < ?) OR
			(kind = 'gift' AND id IN (SELECT campaign_id FROM invitations WHERE sent_at IS NOT NULL
				GROUP BY campaign_id HAVING min(sent_at) >= ? AND min(sent_at) < ?)) OR
			(kind = 'gift' AND status = 'cancelled' AND coalesce(send_at, created_at) >= ? AND coalesce(send_at, created_at) < ?
				AND NOT EXISTS (SELECT 1 FROM invitations WHERE campaign_id = campaigns.id AND sent_at IS NOT NULL))`,
			from, to, from, to, from, to).Order("id").Find(&cs).Error
	return cs, err
}

// ROIReport computes the ROI of every campaign that ran (or runs) between
// from and to (see reportCampaigns).
func (s *Store) ROIReport(ctx context.Context, from, to time.Time) ([]ROI, error) {
	cs, err := s.reportCampaigns(ctx, from, to)
	if err != nil {
		return nil, err
	}
	return s.roiOf(ctx, cs)
}

// ROIReportWithTotal is ROIReport and the report's attributed revenue:
// every purchase inside any of its campaigns' windows (a treated guest's,
// or a referred customer's), once. The rows' revenue_cents do not add up
// to it: one order by a customer two campaigns reached is the revenue of
// both.
func (s *Store) ROIReportWithTotal(ctx context.Context, from, to time.Time) ([]ROI, int64, error) {
	cs, err := s.reportCampaigns(ctx, from, to)
	if err != nil {
		return nil, 0, err
	}
	ws, err := s.windows(ctx, cs)
	if err != nil {
		return nil, 0, err
	}
	var rows []ROI
	var total int64
	g := new(errgroup.Group)
	if s.dialect != config.Postgres {
		g.SetLimit(1)
	}
	g.Go(func() (err error) { rows, err = s.roiOfWindows(ctx, ws); return err })
	g.Go(func() (err error) { total, err = s.attributedTotal(ctx, ws); return err })
	return rows, total, g.Wait()
}

// mergedWindowsTotalSQL follows the windows g(customer_id, lo, hi): each
// customer's windows are merged where they overlap or touch (a window
// starts a stretch of its own unless it starts before the ones ahead of it
// end; identical windows share a stretch, the running sum being over
// peers too), so that no purchase is inside two stretches, and each stretch's
// purchases are summed through the purchases index, customers in order
// (as in windowRevenue). Against a semi-join of every purchase to the
// windows, 1,000 campaigns x 1M purchases in psql: 428-454 -> 278-354 ms.
const mergedWindowsTotalSQL = `, x AS (SELECT customer_id, lo, hi, CASE WHEN lo <= max(hi) OVER (PARTITION BY customer_id
		ORDER BY lo, hi ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) THEN 0 ELSE 1 END AS starts FROM g),
	m AS MATERIALIZED (SELECT customer_id, min(lo) AS lo, max(hi) AS hi FROM (SELECT customer_id, lo, hi,
			sum(starts) OVER (PARTITION BY customer_id ORDER BY lo, hi) AS stretch FROM x) y
		GROUP BY customer_id, stretch ORDER BY customer_id)
	SELECT coalesce(sum(p.cents), 0) FROM m CROSS JOIN LATERAL (SELECT sum(amount_cents) AS cents FROM purchases
		WHERE customer_id = m.customer_id AND purchased_at >= m.lo AND purchased_at < m.hi) p`

// attributedTotal is the sum of the distinct purchases inside any window.
func (s *Store) attributedTotal(ctx context.Context, ws []roiWindow) (int64, error) {
	db, done, err := s.revenueDB(ctx)
	if err != nil {
		return 0, err
	}
	defer done()
	// Each treated guest's window and each referred customer's, then the
	// purchases inside one or more of them.
	windows := func(q windowSQL) string {
		return q.cte + q.referredSQL() + `, g(customer_id, lo, hi) AS (
			SELECT i.customer_id, ` + q.lo + `, ` + q.hi + ` FROM invitations i
			JOIN w ON w.campaign_id = i.campaign_id AND w.run = i.run WHERE NOT i.holdout AND ` + q.treated("w") + `
			UNION ALL
			SELECT rc.customer_id, wc.cfrom, wc.cto FROM rc JOIN wc ON wc.campaign_id = rc.campaign_id)`
	}
	in := func(q windowSQL, sel string) string {
		return windows(q) + ` SELECT ` + sel + ` FROM purchases p WHERE EXISTS (SELECT 1 FROM g
			WHERE g.customer_id = p.customer_id AND p.purchased_at >= g.lo AND p.purchased_at < g.hi)`
	}
	chunks := s.windowChunks(ws, len(ws))
	if len(chunks) == 1 {
		q, ok := s.windowSQL(ws)
		if !ok {
			return 0, nil
		}
		var query string
		if s.dialect == config.Postgres {
			query = windows(q) + mergedWindowsTotalSQL
		} else {
			query = in(q, "coalesce(sum(p.amount_cents), 0)")
		}
		var total int64
		err := db.Raw(query, q.args...).Scan(&total).Error
		return total, err
	}
	// SQLite, past its parameter limit: the purchases of each chunk, each
	// counted once across chunks.
	seen := map[int64]int64{}
	for _, part := range chunks {
		q, ok := s.windowSQL(part)
		if !ok {
			continue
		}
		var ps []struct {
			ID          int64
			AmountCents int64
		}
		if err := db.Raw(in(q, "p.id, p.amount_cents"), q.args...).Scan(&ps).Error; err != nil {
			return 0, err
		}
		for _, p := range ps {
			seen[p.ID] = p.AmountCents
		}
	}
	var total int64
	for _, c := range seen {
		total += c
	}
	return total, nil
}

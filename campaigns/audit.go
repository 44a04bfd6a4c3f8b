package campaigns

import (
	"context"
	"sort"
	"time"

	"gorm.io/gorm"
)

// LevelRow is one level of the audit.
type LevelRow struct {
	Level            Level
	Name             string
	Customers        int64
	PromotedInto     int64 // moved up into this level this quarter
	NotContacted90   int64
	NotContactedPart float64 // share of the level, 0-1
	NPS              *float64
	NPSAnswers       int
}

// MonthNPS is NPS over one calendar month.
type MonthNPS struct {
	Month   string // 2026-10
	NPS     float64
	Answers int
}

// Audit is the health check of the customer base.
type Audit struct {
	QuarterStart   time.Time
	Levels         []LevelRow
	Total          int64
	NPSByMonth     []MonthNPS
	OpenFollowUps  int64
	Forgotten      []Customer // levels 6-7 not contacted in 60 days
	ForgottenTotal int64
}

// forgottenShown is how many forgotten customers the audit lists.
const forgottenShown = 50

// RelationshipAudit gathers the audit.
func (s *Store) RelationshipAudit(ctx context.Context) (*Audit, error) {
	db := s.db.WithContext(ctx)
	now := s.now()
	q := time.Date(now.Year(), time.Month((int(now.Month())-1)/3*3+1), 1, 0, 0, 0, 0, time.UTC)
	a := &Audit{QuarterStart: q}
	// Each level's customers, and how many of them were contacted in the
	// last 90 days, in one pass over customers (two, one of them a join of
	// the recent contacts to customers, took 0.6-0.7 s at a million).
	var counts []struct {
		Level  Level
		N      int64
		Recent int64
		Stale  int64
	}
	if err := db.Table("customers c").Select("c.level, count(*) AS n, count(cc.customer_id) AS recent").
		Joins("LEFT JOIN customer_contacts cc ON cc.customer_id = c.id AND cc.last_contacted_at >= ?", now.Add(-90*24*time.Hour)).
		Group("c.level").Scan(&counts).Error; err != nil {
		return nil, err
	}
	for i := range counts {
		counts[i].Stale = counts[i].N - counts[i].Recent
	}
	var moved []struct {
		ToLevel Level
		N       int64
	}
	if err := db.Model(&LedgerEntry{}).Select("to_level, count(*) AS n").
		Where("from_level > 0 AND to_level > from_level AND created_at >= ?", q).Group("to_level").Scan(&moved).Error; err != nil {
		return nil, err
	}
	var answers []struct {
		Level Level
		Score int
		At    time.Time
	}
	if err := db.Table("invitations AS i").Select("c.level, i.nps_score AS score, i.nps_at AS at").
		Joins("JOIN customers c ON c.id = i.customer_id").Where("i.nps_score IS NOT NULL AND i.nps_at IS NOT NULL").
		Scan(&answers).Error; err != nil {
		return nil, err
	}
	byLevel := map[Level][]int{}
	byMonth := map[string][]int{}
	for _, x := range answers {
		byLevel[x.Level] = append(byLevel[x.Level], x.Score)
		m := x.At.UTC().Format("2006-01")
		byMonth[m] = append(byMonth[m], x.Score)
	}
	for _, li := range Ladder {
		row := LevelRow{Level: li.Level, Name: li.Name}
		for _, c := range counts {
			if c.Level == li.Level {
				row.Customers, row.NotContacted90 = c.N, c.Stale
			}
		}
		for _, m := range moved {
			if m.ToLevel == li.Level {
				row.PromotedInto = m.N
			}
		}
		if row.Customers > 0 {
			row.NotContactedPart = float64(row.NotContacted90) / float64(row.Customers)
		}
		if v, ok := NPS(byLevel[li.Level]); ok {
			row.NPS, row.NPSAnswers = &v, len(byLevel[li.Level])
		}
		a.Total += row.Customers
		a.Levels = append(a.Levels, row)
	}
	for m, sc := range byMonth {
		v, _ := NPS(sc)
		a.NPSByMonth = append(a.NPSByMonth, MonthNPS{Month: m, NPS: v, Answers: len(sc)})
	}
	sort.Slice(a.NPSByMonth, func(i, j int) bool { return a.NPSByMonth[i].Month < a.NPSByMonth[j].Month })
	if err := db.Model(&Invitation{}).Where("nps_score IS NOT NULL AND nps_score <= 6 AND followed_up_at IS NULL").
		Count(&a.OpenFollowUps).Error; err != nil {
		return nil, err
	}
	// Forgotten: loyal customers (Good customer and up) who may be written
	// to and whom nobody contacted in 60 days. Counted from the level
	// index alone (it carries consent) on PostgreSQL.
	since := now.Add(-60 * 24 * time.Hour)
	loyal := func() *gorm.DB {
		return db.Model(&Customer{}).Where("customers.level >= ? AND customers.consent_state = ?", LevelGoodCustomer, Subscribed)
	}
	if err := loyal().Where(notContactedSince, since).Count(&a.ForgottenTotal).Error; err != nil {
		return nil, err
	}
	// The list: those never contacted first, biggest spenders first, then
	// those whose last contact is oldest. In two steps, each of which can
	// stop at the page's end while there are enough to fill it: the
	// never-contacted down the spend index, the others up the contacts'
	// index. As one query sorted by last contact it read and sorted every
	// loyal customer's row first (0.6-1.0 s at a million customers); after
	// a campaign to nearly everyone the first step reads them all too.
	if err := loyal().Where("NOT EXISTS (SELECT 1 FROM customer_contacts cc WHERE cc.customer_id = customers.id)").
		Preload("Owner").Order("customers.annual_spend_cents DESC, customers.id DESC").Limit(forgottenShown).
		Find(&a.Forgotten).Error; err != nil {
		return nil, err
	}
	if left := forgottenShown - len(a.Forgotten); left > 0 {
		var stale []Customer
		if err := loyal().Select("customers.*").Joins("JOIN customer_contacts lc ON lc.customer_id = customers.id").
			Where("lc.last_contacted_at < ?", since).Preload("Owner").
			Order("lc.last_contacted_at, customers.annual_spend_cents DESC, customers.id DESC").Limit(left).
			Find(&stale).Error; err != nil {
			return nil, err
		}
		a.Forgotten = append(a.Forgotten, stale...)
	}
	return a, fillContacts(db, a.Forgotten)
}

package campaigns

import (
	"context"
	"time"
)

// Promotion is a recent move up the ladder, for the dashboard.
type Promotion struct {
	CustomerID int64
	Name       string
	FromLevel  Level
	ToLevel    Level
	Rule       string
	Source     string
	CreatedAt  time.Time
}

// Dashboard is the home page's summary.
type Dashboard struct {
	Upcoming      []Campaign
	UpcomingYes   map[int64]int64
	Sending       []Campaign
	Progress      map[int64]int // percent sent
	Promotions    []Promotion
	NPS           *float64
	NPSAnswers    int
	OpenFollowUps int64
	Customers     int64
}

// Dashboard gathers what a user sees first.
func (s *Store) Dashboard(ctx context.Context) (*Dashboard, error) {
	db := s.db.WithContext(ctx)
	now := s.now()
	d := &Dashboard{UpcomingYes: map[int64]int64{}, Progress: map[int64]int{}}
	if err := db.Where("kind = ? AND starts_at > ? AND status IN ?", KindEvent, now,
		[]Status{StatusScheduled, StatusSending, StatusSent, StatusDraft}).Order("starts_at").Limit(5).Find(&d.Upcoming).Error; err != nil {
		return nil, err
	}
	for i := range d.Upcoming {
		var n int64
		if err := db.Model(&Invitation{}).Where("campaign_id = ? AND rsvp = 'yes'", d.Upcoming[i].ID).Count(&n).Error; err != nil {
			return nil, err
		}
		d.UpcomingYes[d.Upcoming[i].ID] = n
	}
	if err := db.Where("status = ?", StatusSending).Order("id").Limit(10).Find(&d.Sending).Error; err != nil {
		return nil, err
	}
	for i := range d.Sending {
		f, err := s.Funnel(ctx, &d.Sending[i])
		if err != nil {
			return nil, err
		}
		if total := f.Audience - f.Holdout; total > 0 {
			d.Progress[d.Sending[i].ID] = int((f.Sent + f.Failed + f.Suppressed) * 100 / total)
		}
	}
	if err := db.Table("level_ledger AS l").Select("l.customer_id, c.name, l.from_level, l.to_level, l.rule, l.source, l.created_at").
		Joins("JOIN customers c ON c.id = l.customer_id").Where("l.from_level > 0 AND l.to_level > l.from_level").
		Order("l.id DESC").Limit(8).Scan(&d.Promotions).Error; err != nil {
		return nil, err
	}
	var scores []int
	if err := db.Model(&Invitation{}).Where("nps_score IS NOT NULL AND nps_at > ?", now.Add(-90*24*time.Hour)).
		Pluck("nps_score", &scores).Error; err != nil {
		return nil, err
	}
	if v, ok := NPS(scores); ok {
		d.NPS, d.NPSAnswers = &v, len(scores)
	}
	if err := db.Model(&Invitation{}).Where("nps_score IS NOT NULL AND nps_score <= 6 AND followed_up_at IS NULL").
		Count(&d.OpenFollowUps).Error; err != nil {
		return nil, err
	}
	err := db.Model(&Customer{}).Count(&d.Customers).Error
	return d, err
}

package campaigns

import (
	"context"
	"strings"
	"time"

	"gorm.io/gorm/clause"
)

// GiftCode is one code of a gift campaign's pool.
type GiftCode struct {
	ID           int64
	CampaignID   int64
	Code         string
	InvitationID *int64
	AssignedAt   *time.Time
	CreatedAt    time.Time
}

// GiftCodeCounts says how many codes a campaign has and how many are free.
type GiftCodeCounts struct {
	Added     int64 `json:"added"`
	Available int64 `json:"available"`
	Assigned  int64 `json:"assigned"`
}

// AddGiftCodes adds codes to a gift campaign's pool. Blank entries are
// refused by position; codes already in the pool are skipped, so uploading
// the same file twice adds nothing.
func (s *Store) AddGiftCodes(ctx context.Context, campaignID int64, codes []string) (GiftCodeCounts, error) {
	c, err := s.Campaign(ctx, campaignID)
	if err != nil {
		return GiftCodeCounts{}, err
	}
	if c.Kind != KindGift {
		return GiftCodeCounts{}, &Error{Code: EINVALID, Message: "only gift campaigns take gift codes", Fields: map[string]string{"codes": "this is an event campaign"}}
	}
	switch c.Status {
	case StatusClosed, StatusCancelled:
		return GiftCodeCounts{}, conflictf("a %s campaign takes no more codes", c.Status)
	}
	v := Invalid{}
	if len(codes) == 0 {
		v.Add("codes", "is empty; send a list of codes")
	}
	if len(codes) > 100000 {
		v.Add("codes", "at most 100,000 codes at a time")
	}
	now := s.now()
	rows := make([]GiftCode, 0, len(codes))
	seen := map[string]bool{}
	for i, code := range codes {
		code = strings.TrimSpace(code)
		switch {
		case code == "":
			v.Add("codes", "entry %d is blank", i+1)
		case len(code) > 200:
			v.Add("codes", "entry %d is longer than 200 characters", i+1)
		case !seen[code]:
			seen[code] = true
			rows = append(rows, GiftCode{CampaignID: campaignID, Code: code, CreatedAt: now})
		}
	}
	if err := v.Err(); err != nil {
		return GiftCodeCounts{}, err
	}
	res := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, 2000)
	if res.Error != nil {
		return GiftCodeCounts{}, res.Error
	}
	counts, err := s.GiftCodeCounts(ctx, campaignID)
	counts.Added = res.RowsAffected
	return counts, err
}

// GiftCodeCounts counts a campaign's pool.
func (s *Store) GiftCodeCounts(ctx context.Context, campaignID int64) (GiftCodeCounts, error) {
	var out GiftCodeCounts
	err := s.db.WithContext(ctx).Model(&GiftCode{}).Where("campaign_id = ?", campaignID).
		Select("coalesce(sum(CASE WHEN invitation_id IS NULL THEN 1 ELSE 0 END), 0) AS available, " +
			"coalesce(sum(CASE WHEN invitation_id IS NOT NULL THEN 1 ELSE 0 END), 0) AS assigned").Scan(&out).Error
	return out, err
}

package campaigns

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// CostLine is one cost of a campaign: fixed (the venue), per attendee
// (catering) or per gift (the card itself).
type CostLine struct {
	ID          int64      `json:"id"`
	CampaignID  int64      `json:"campaign_id"`
	Category    string     `json:"category"`
	AmountCents int64      `json:"amount_cents"`
	Per         string     `json:"per"`
	Note        string     `json:"note"`
	CreatedBy   string     `json:"created_by"`
	CreatedAt   time.Time  `json:"created_at"`
	DeletedAt   *time.Time `json:"-"`
	DeletedBy   string     `json:"-"`
}

// CostAudit is one change to a campaign's costs.
type CostAudit struct {
	ID         int64     `json:"id"`
	CostLineID int64     `json:"cost_line_id"`
	CampaignID int64     `json:"campaign_id"`
	Action     string    `json:"action"`
	Detail     string    `json:"detail"`
	Actor      string    `json:"by"`
	CreatedAt  time.Time `json:"at"`
}

func (CostAudit) TableName() string { return "cost_audit" }

// CostInput is POST /api/v1/campaigns/:id/costs.
type CostInput struct {
	Category    string `json:"category"`
	AmountCents *int64 `json:"amount_cents"`
	Per         string `json:"per"`
	Note        string `json:"note"`
}

func (l CostLine) describe() string {
	return fmt.Sprintf("%s %s %s%s", l.Category, FormatMoney(l.AmountCents), l.Per, map[bool]string{true: "", false: " (" + l.Note + ")"}[l.Note == ""])
}

// AddCost adds a cost line and records who added it.
func (s *Store) AddCost(ctx context.Context, campaignID int64, in CostInput, by string) (*CostLine, error) {
	v := Invalid{}
	in.Category = tidy(in.Category)
	if in.Category == "" {
		v.Add("category", "is required, e.g. venue, catering, gift cards")
	} else if len(in.Category) > 100 {
		v.Add("category", "is longer than 100 characters")
	}
	if in.AmountCents == nil {
		v.Add("amount_cents", "is required")
	} else if *in.AmountCents < 0 {
		v.Add("amount_cents", "must not be negative")
	}
	switch in.Per {
	case "fixed", "attendee", "gift":
	default:
		v.Add("per", "must be fixed, attendee or gift")
	}
	if len(in.Note) > 500 {
		v.Add("note", "is longer than 500 characters")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	c, err := s.Campaign(ctx, campaignID)
	if err != nil {
		return nil, err
	}
	if in.Per == "attendee" && c.Kind != KindEvent {
		return nil, &Error{Code: EINVALID, Message: "a gift campaign has no attendees", Fields: map[string]string{"per": "use fixed or gift"}}
	}
	if in.Per == "gift" && c.Kind != KindGift {
		return nil, &Error{Code: EINVALID, Message: "an event has no gifts", Fields: map[string]string{"per": "use fixed or attendee"}}
	}
	l := &CostLine{CampaignID: campaignID, Category: in.Category, AmountCents: *in.AmountCents, Per: in.Per,
		Note: strings.TrimSpace(in.Note), CreatedBy: by, CreatedAt: s.now()}
	err = s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(l).Error; err != nil {
			return err
		}
		return tx.Create(&CostAudit{CostLineID: l.ID, CampaignID: campaignID, Action: "added", Detail: l.describe(), Actor: by, CreatedAt: s.now()}).Error
	})
	return l, err
}

// RemoveCost removes a cost line (kept, marked removed, audited).
func (s *Store) RemoveCost(ctx context.Context, campaignID, lineID int64, by string) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		var l CostLine
		if err := tx.Where("id = ? AND campaign_id = ? AND deleted_at IS NULL", lineID, campaignID).Take(&l).Error; err != nil {
			return notFound(err, "cost line", lineID)
		}
		now := s.now()
		if err := tx.Model(&CostLine{}).Where("id = ?", l.ID).Updates(map[string]any{"deleted_at": now, "deleted_by": by}).Error; err != nil {
			return err
		}
		return tx.Create(&CostAudit{CostLineID: l.ID, CampaignID: campaignID, Action: "removed", Detail: l.describe(), Actor: by, CreatedAt: now}).Error
	})
}

// Costs lists a campaign's live cost lines and its cost history.
func (s *Store) Costs(ctx context.Context, campaignID int64) ([]CostLine, []CostAudit, error) {
	var ls []CostLine
	if err := s.db.WithContext(ctx).Where("campaign_id = ? AND deleted_at IS NULL", campaignID).Order("id").Find(&ls).Error; err != nil {
		return nil, nil, err
	}
	var as []CostAudit
	err := s.db.WithContext(ctx).Where("campaign_id = ?", campaignID).Order("id DESC").Find(&as).Error
	return ls, as, err
}

package campaigns

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// Referral records that someone referred a new person. The referrer is a
// customer or a member of staff (reps are asked how many they brought in).
type Referral struct {
	ID                 int64     `json:"id"`
	ReferrerCustomerID *int64    `json:"referrer_id,omitempty" gorm:"column:referrer_customer_id"`
	ReferrerUserID     *int64    `json:"referrer_user_id,omitempty"`
	ReferredCustomerID int64     `json:"referred_id" gorm:"column:referred_customer_id"`
	CampaignID         *int64    `json:"campaign_id"`
	CreatedBy          string    `json:"created_by"`
	CreatedAt          time.Time `json:"created_at"`
}

// ReferralInput is the body of POST /api/v1/referrals.
type ReferralInput struct {
	ReferrerID     int64  `json:"referrer_id"`
	ReferrerUserID int64  `json:"referrer_user_id"`
	CampaignID     *int64 `json:"campaign_id"`
	Referred       struct {
		Name    string `json:"name"`
		Email   string `json:"email"`
		Company string `json:"company"`
	} `json:"referred"`
}

// RecordReferral records "A referred B": B is matched by email or created
// at Contact (owned by the recording rep); a customer referrer is credited
// by the referral rule of the campaign (given, or the latest one that
// reached them within its attribution window). Recording the same pair
// again changes nothing (created is false).
func (s *Store) RecordReferral(ctx context.Context, in ReferralInput, by *User) (*Referral, bool, error) {
	v := Invalid{}
	if in.ReferrerID == 0 && in.ReferrerUserID == 0 {
		v.Add("referrer_id", "is required: the customer (or referrer_user_id, the staff member) who referred")
	}
	name := tidy(in.Referred.Name)
	if name == "" {
		v.Add("referred.name", "is required")
	}
	email, err := NormalizeEmail(in.Referred.Email)
	if err != nil {
		v.Add("referred.email", "%s", err.Error())
	}
	if err := v.Err(); err != nil {
		return nil, false, err
	}
	var out Referral
	created := false
	err = s.tx(ctx, func(tx *gorm.DB) error {
		now := s.now()
		if in.ReferrerID != 0 {
			var n int64
			if err := tx.Model(&Customer{}).Where("id = ?", in.ReferrerID).Count(&n).Error; err != nil || n == 0 {
				if err == nil {
					err = &Error{Code: EINVALID, Message: "unknown referrer", Fields: map[string]string{"referrer_id": "no such customer"}}
				}
				return err
			}
		}
		if in.ReferrerUserID != 0 {
			var n int64
			if err := tx.Model(&User{}).Where("id = ?", in.ReferrerUserID).Count(&n).Error; err != nil || n == 0 {
				if err == nil {
					err = &Error{Code: EINVALID, Message: "unknown referrer", Fields: map[string]string{"referrer_user_id": "no such user"}}
				}
				return err
			}
		}
		var b Customer
		switch err := tx.Where("email = ?", email).Take(&b).Error; {
		case err == gorm.ErrRecordNotFound:
			b = Customer{Name: name, Email: email, Company: tidy(in.Referred.Company), Level: LevelContact,
				ConsentState: Subscribed, CreatedAt: now, UpdatedAt: now}
			if by != nil && by.ID != 0 && by.Role == RoleRep {
				b.OwnerID = &by.ID
			}
			if err := tx.Omit("Owner").Create(&b).Error; err != nil {
				return err
			}
			if err := recordCreated(tx, []*Customer{&b}, "referred", "referral", actorOf(by), now); err != nil {
				return err
			}
		case err != nil:
			return err
		}
		if in.ReferrerID != 0 && b.ID == in.ReferrerID {
			return &Error{Code: EINVALID, Message: "a customer cannot refer themselves", Fields: map[string]string{"referred.email": "is the referrer's own address"}}
		}
		q := tx.Where("referred_customer_id = ?", b.ID)
		if in.ReferrerID != 0 {
			q = q.Where("referrer_customer_id = ?", in.ReferrerID)
		} else {
			q = q.Where("referrer_user_id = ? AND referrer_customer_id IS NULL", in.ReferrerUserID)
		}
		if err := q.Take(&out).Error; err == nil {
			return nil // recorded before
		}
		out = Referral{ReferredCustomerID: b.ID, CampaignID: in.CampaignID, CreatedBy: actorOf(by), CreatedAt: now}
		if in.ReferrerID != 0 {
			out.ReferrerCustomerID = &in.ReferrerID
		}
		if in.ReferrerUserID != 0 {
			out.ReferrerUserID = &in.ReferrerUserID
		}
		var c *Campaign
		if in.CampaignID != nil {
			var cc Campaign
			if err := tx.Take(&cc, *in.CampaignID).Error; err != nil {
				return &Error{Code: EINVALID, Message: "unknown campaign", Fields: map[string]string{"campaign_id": "no such campaign"}}
			}
			c = &cc
		} else if in.ReferrerID != 0 {
			var err error
			if c, err = s.latestTreatment(tx, in.ReferrerID, now); err != nil {
				return err
			}
			if c != nil {
				out.CampaignID = &c.ID
			}
		}
		if err := tx.Create(&out).Error; err != nil {
			return err
		}
		created = true
		if in.ReferrerID == 0 {
			return nil
		}
		if c != nil {
			return s.credit(tx, c, in.ReferrerID, TriggerReferral, CampaignSource(c.ID), actorOf(by))
		}
		for _, r := range DefaultRules {
			if r.Trigger == TriggerReferral {
				r := r
				if _, err := s.applyLevelChange(tx, LevelChange{CustomerID: in.ReferrerID, Rule: r.Name,
					Source: "referral:" + itoa(out.ID), Actor: actorOf(by), Once: true, Target: r.Target}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return &out, created, nil
}

// latestTreatment is the latest campaign that reached a customer (attended
// the event, or was sent the gift) whose attribution window is still open.
func (s *Store) latestTreatment(tx *gorm.DB, customerID int64, now time.Time) (*Campaign, error) {
	var cs []Campaign
	err := tx.Table("campaigns").Select("campaigns.*").
		Joins("JOIN invitations i ON i.campaign_id = campaigns.id").
		Where("i.customer_id = ? AND NOT i.holdout AND (i.attended OR (campaigns.kind = 'gift' AND i.status IN ('sent', 'delivered')))", customerID).
		Order("campaigns.id DESC").Limit(10).Find(&cs).Error
	if err != nil {
		return nil, err
	}
	for i := range cs {
		at := cs[i].LastRunAt
		if cs[i].EndsAt != nil {
			at = cs[i].EndsAt
		}
		if at != nil && now.Before(at.Add(time.Duration(cs[i].AttributionDays)*24*time.Hour)) {
			return &cs[i], nil
		}
	}
	return nil, nil
}

// ReferralsByUser counts referrals each member of staff brought in.
func (s *Store) ReferralsByUser(ctx context.Context) (map[int64]int64, error) {
	var rows []struct {
		ReferrerUserID int64
		N              int64
	}
	err := s.db.WithContext(ctx).Model(&Referral{}).Select("referrer_user_id, count(*) AS n").
		Where("referrer_user_id IS NOT NULL").Group("referrer_user_id").Scan(&rows).Error
	out := map[int64]int64{}
	for _, r := range rows {
		out[r.ReferrerUserID] = r.N
	}
	return out, err
}

// ReferralRow is a referral as a customer's page lists it.
type ReferralRow struct {
	Referral
	ReferredName string
}

// ReferralsBy lists the people a customer referred, newest first.
func (s *Store) ReferralsBy(ctx context.Context, customerID int64) ([]ReferralRow, error) {
	var out []ReferralRow
	err := s.db.WithContext(ctx).Table("referrals AS r").Select("r.*, c.name AS referred_name").
		Joins("JOIN customers c ON c.id = r.referred_customer_id").
		Where("r.referrer_customer_id = ?", customerID).Order("r.id DESC").Scan(&out).Error
	return out, err
}

package campaigns

import (
	"encoding/json"
	"fmt"

	"gorm.io/gorm"
)

type txDB = *gorm.DB

// Triggers are the outreach events that can promote a customer.
const (
	TriggerDelivered    = "delivered"     // an invitation or gift reached them
	TriggerRSVPAnswered = "rsvp_answered" // they answered yes or no
	TriggerSurvey       = "survey"        // they answered a survey
	TriggerAttended     = "attended"      // they came to the event
	TriggerPurchase     = "purchase"      // first purchase
	TriggerRepeat       = "repeat"        // purchases on two or more days
	TriggerReferral     = "referral"      // someone they referred was recorded
)

// Triggers lists every trigger, for rule editors.
var Triggers = []string{TriggerDelivered, TriggerRSVPAnswered, TriggerSurvey, TriggerAttended, TriggerPurchase, TriggerRepeat, TriggerReferral}

// Rule promotes a customer when its trigger fires: to at least AtLeast,
// or Up levels (capped at Cap), and only when the customer already stands
// at MinCurrent or above. Levels never drop by a rule.
type Rule struct {
	Name       string `json:"name"`
	Trigger    string `json:"trigger"`
	AtLeast    Level  `json:"at_least,omitempty"`
	Up         int    `json:"up,omitempty"`
	Cap        Level  `json:"cap,omitempty"`
	MinCurrent Level  `json:"min_current,omitempty"`
}

// DefaultRules are PRODUCT.md's ladder rules.
var DefaultRules = []Rule{
	{Name: "delivered", Trigger: TriggerDelivered, AtLeast: LevelContact},
	{Name: "rsvp", Trigger: TriggerRSVPAnswered, AtLeast: LevelProspect},
	{Name: "survey", Trigger: TriggerSurvey, AtLeast: LevelProspect},
	{Name: "attended", Trigger: TriggerAttended, Up: 1, AtLeast: LevelAcquaintance, Cap: LevelFriend},
	{Name: "first_purchase", Trigger: TriggerPurchase, AtLeast: LevelCustomer},
	{Name: "repeat_purchase", Trigger: TriggerRepeat, AtLeast: LevelGoodCustomer},
	{Name: "referral", Trigger: TriggerReferral, AtLeast: LevelFriend, MinCurrent: LevelCustomer},
}

// Target is the level a rule moves a customer at cur to.
func (r Rule) Target(cur Level) Level {
	if r.MinCurrent != 0 && cur < r.MinCurrent {
		return cur
	}
	to := cur
	if r.Up > 0 {
		to = cur + Level(r.Up)
		if r.Cap != 0 && to > r.Cap {
			to = max(cur, r.Cap)
		}
	}
	if r.AtLeast != 0 && to < r.AtLeast {
		to = r.AtLeast
	}
	return min(max(to, cur), LevelFriend)
}

// Validate names what is wrong with a rule.
func (r Rule) Validate() error {
	v := Invalid{}
	switch r.Trigger {
	case TriggerDelivered, TriggerRSVPAnswered, TriggerSurvey, TriggerAttended, TriggerPurchase, TriggerRepeat, TriggerReferral:
	default:
		v.Add("trigger", "must be delivered, rsvp_answered, survey, attended, purchase, repeat or referral")
	}
	if r.Name == "" {
		v.Add("name", "is required")
	}
	if r.AtLeast != 0 && !r.AtLeast.Valid() {
		v.Add("at_least", "must be 1-7")
	}
	if r.Up < 0 || r.Up > 6 {
		v.Add("up", "must be 0-6")
	}
	if r.Up == 0 && r.AtLeast == 0 {
		v.Add("at_least", "give at_least, or up")
	}
	return v.Err()
}

// Rules are the campaign's promotion rules (the defaults unless edited).
func (c *Campaign) PromotionRules() []Rule {
	if c.Rules == "" {
		return DefaultRules
	}
	var rs []Rule
	if err := json.Unmarshal([]byte(c.Rules), &rs); err != nil {
		return DefaultRules
	}
	return rs
}

// credit applies every rule of the campaign with this trigger to a
// customer, once per (rule, source), in the caller's transaction.
func (s *Store) credit(tx txDB, c *Campaign, customerID int64, trigger, source, actor string) error {
	for _, r := range c.PromotionRules() {
		if r.Trigger != trigger {
			continue
		}
		r := r
		if _, err := s.applyLevelChange(tx, LevelChange{CustomerID: customerID, Rule: r.Name, Source: source,
			Actor: actor, Once: true, Target: r.Target}); err != nil {
			return fmt.Errorf("credit %s: %w", r.Name, err)
		}
	}
	return nil
}

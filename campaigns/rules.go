package campaigns

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/rapport/rapport/config"
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
	_, err := s.creditMany(tx, c, []int64{customerID}, trigger, source, actor)
	return err
}

// creditMany is credit for many customers at once (RSVP answers,
// deliveries come in batches): one locking read of their levels, one ledger
// lookup, one UPDATE per resulting level and one ledger insert, instead of
// four statements per customer. Customers are locked in id order, so two
// batches cannot deadlock; a customer since deleted is skipped. It returns
// each customer's level afterwards.
func (s *Store) creditMany(tx txDB, c *Campaign, customerIDs []int64, trigger, source, actor string) (map[int64]Level, error) {
	return s.creditManyRounds(tx, c, customerIDs, nil, trigger, source, actor)
}

// creditManyRounds is creditMany for the attended credit, whose key
// carries each customer's round (creditKey): rounds maps a customer to
// theirs, absent for 0.
func (s *Store) creditManyRounds(tx txDB, c *Campaign, customerIDs []int64, rounds map[int64]int, trigger, source, actor string) (map[int64]Level, error) {
	rules, _ := rulesFor(c, trigger, source)
	keys := roundKeys(rules, source, rounds)
	if len(rules) == 0 || len(customerIDs) == 0 {
		return nil, nil
	}
	ids := slices.Clone(customerIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var cur []customerLevel
	in, arg := idsIn(tx, "id", ids)
	q := tx.Model(&Customer{}).Select("id, level").Where(in, arg).Order("id")
	if s.dialect == config.Postgres {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	if err := q.Find(&cur).Error; err != nil {
		return nil, err
	}
	setRounds(cur, rounds)
	var done []heldCredit
	inCust, custArg := idsIn(tx, "customer_id", ids)
	if err := tx.Model(&LedgerEntry{}).Select("customer_id, credit_key").Where(inCust+" AND credit_key IN ?", custArg, keys).
		Scan(&done).Error; err != nil {
		return nil, err
	}
	plan, err := planCredits(rules, cur, done, source, actor, s.now())
	if err != nil || len(plan.entries) == 0 {
		return plan.level, err
	}
	for to, ids := range plan.moved {
		in, arg := idsIn(tx, "id", ids)
		if err := tx.Model(&Customer{}).Where(in, arg).Updates(map[string]any{"level": to, "updated_at": plan.at}).Error; err != nil {
			return nil, err
		}
	}
	return plan.level, insertLedger(tx, plan.entries)
}

// customerLevel is a customer's level as read for a credit, and the round
// of the credit (creditKey), set after the read.
type customerLevel struct {
	ID    int64
	Level Level
	Round int `db:"-" gorm:"-"`
}

// creditKey is the key that makes a rule credit a customer once per
// source. An undone check-in takes back its attended credit with a
// compensating ledger row, but the append-only ledger keeps the credit's
// row and key; round (how many attended credits of the invitation were
// undone) gives the next real check-in a key of its own. Keys still end
// in "|" + source.
func creditKey(rule, source string, round int) string {
	if round == 0 {
		return rule + "|" + source
	}
	return rule + "#" + strconv.Itoa(round+1) + "|" + source
}

// roundKeys is the credit keys of rules for the rounds given (and round 0).
func roundKeys(rules []Rule, source string, rounds map[int64]int) []string {
	var keys []string
	seen := map[int]bool{}
	for _, r := range append([]int{0}, slices.Collect(maps.Values(rounds))...) {
		if seen[r] {
			continue
		}
		seen[r] = true
		for _, rule := range rules {
			keys = append(keys, creditKey(rule.Name, source, r))
		}
	}
	return keys
}

// setRounds sets the round of each customer read for a credit.
func setRounds(cur []customerLevel, rounds map[int64]int) {
	for i := range cur {
		cur[i].Round = rounds[cur[i].ID]
	}
}

// heldCredit is a credit a customer already has.
type heldCredit struct {
	CustomerID int64
	CreditKey  string
}

// rulesFor is the campaign's rules for a trigger and their credit keys.
func rulesFor(c *Campaign, trigger, source string) ([]Rule, []string) {
	var rules []Rule
	var keys []string
	for _, r := range c.PromotionRules() {
		if r.Trigger == trigger {
			rules = append(rules, r)
			keys = append(keys, r.Name+"|"+source)
		}
	}
	return rules, keys
}

// creditPlan is what crediting does: the ledger rows, each customer's
// level after, and who moves to which level.
type creditPlan struct {
	entries []LedgerEntry
	level   map[int64]Level
	moved   map[Level][]int64
	at      time.Time
}

// planCredits applies the rules in order to each customer (cur, in id
// order) that does not hold the rule's credit yet; a rule that does not
// move the level leaves no credit.
func planCredits(rules []Rule, cur []customerLevel, done []heldCredit, source, actor string, now time.Time) (creditPlan, error) {
	p := creditPlan{level: make(map[int64]Level, len(cur)), moved: map[Level][]int64{}, at: now}
	held := make(map[heldCredit]bool, len(done))
	for _, d := range done {
		held[d] = true
	}
	from := make(map[int64]Level, len(cur))
	for _, c := range cur {
		from[c.ID], p.level[c.ID] = c.Level, c.Level
	}
	for _, r := range rules {
		for _, c := range cur {
			key := creditKey(r.Name, source, c.Round)
			if held[heldCredit{c.ID, key}] {
				continue
			}
			l := p.level[c.ID]
			to := r.Target(l)
			if !to.Valid() {
				return p, fmt.Errorf("credit %s: level %d out of range", r.Name, to)
			}
			if to == l {
				continue
			}
			k := key
			p.entries = append(p.entries, LedgerEntry{CustomerID: c.ID, FromLevel: l, ToLevel: to, Rule: r.Name, Source: source,
				CreditKey: &k, Actor: actor, CreatedAt: now})
			p.level[c.ID] = to
		}
	}
	for _, c := range cur {
		if p.level[c.ID] != from[c.ID] {
			p.moved[p.level[c.ID]] = append(p.moved[p.level[c.ID]], c.ID)
		}
	}
	return p, nil
}

package campaigns

import (
	"context"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/rapport/rapport/config"
)

// Rules that move customers on the ladder. Campaign rules (issue-specific
// credits such as "attended") add theirs; these belong to the foundation.
const (
	RuleCreated = "created" // the record entered Rapport at this level
	RuleImport  = "import"  // an import raised the level
	RuleManual  = "manual"  // a coordinator set it by hand, with a note
	RuleAPI     = "api"     // an API upsert raised the level
)

// LedgerEntry is one row of the append-only level history.
type LedgerEntry struct {
	ID         int64     `json:"-"`
	CustomerID int64     `json:"-"`
	FromLevel  Level     `json:"from"`
	ToLevel    Level     `json:"to"`
	Rule       string    `json:"rule"`
	Source     string    `json:"source"`
	CreditKey  *string   `json:"-"`
	Actor      string    `json:"by"`
	Note       string    `json:"note,omitempty"`
	CreatedAt  time.Time `json:"at"`
}

func (LedgerEntry) TableName() string { return "level_ledger" }

// LevelChange asks for a customer's level to move.
type LevelChange struct {
	CustomerID int64
	Rule       string
	Source     string // what caused it: "campaign:7", "import:12", "user:3"
	Actor      string // who: a user's email, "system", "cli"
	Note       string
	// Once makes this a credit: the same rule from the same source moves a
	// customer at most once, however often it is applied (two check-ins).
	Once bool
	// Target computes the new level from the current one.
	Target func(current Level) Level
}

// SetTo sets a level outright (manual changes may lower it).
func SetTo(l Level) func(Level) Level { return func(Level) Level { return l } }

// AtLeast raises to l; levels never drop by themselves.
func AtLeast(l Level) func(Level) Level {
	return func(cur Level) Level { return max(cur, l) }
}

// OneUpAtLeast moves up one step, to at least l, at most Friend.
func OneUpAtLeast(l Level) func(Level) Level {
	return func(cur Level) Level { return min(max(cur+1, l), LevelFriend) }
}

// ChangeLevel applies one change in its own transaction. It returns the
// ledger row written, or nil when the level did not move.
func (s *Store) ChangeLevel(ctx context.Context, ch LevelChange) (*LedgerEntry, error) {
	var out *LedgerEntry
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var err error
		out, err = s.applyLevelChange(tx, ch)
		return err
	})
	return out, err
}

// applyLevelChange is the one place where an existing customer's level
// changes: it locks the customer, computes the target, and writes the new
// level and its ledger row in the caller's transaction.
func (s *Store) applyLevelChange(tx *gorm.DB, ch LevelChange) (*LedgerEntry, error) {
	var cur struct{ Level Level }
	q := tx.Model(&Customer{}).Select("level").Where("id = ?", ch.CustomerID)
	if s.dialect == config.Postgres {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	if err := q.Take(&cur).Error; err != nil {
		return nil, notFound(err, "customer", ch.CustomerID)
	}
	var key *string
	if ch.Once {
		k := ch.Rule + "|" + ch.Source
		key = &k
		var n int64
		if err := tx.Model(&LedgerEntry{}).Where("customer_id = ? AND credit_key = ?", ch.CustomerID, k).Count(&n).Error; err != nil {
			return nil, err
		}
		if n > 0 {
			return nil, nil
		}
	}
	to := ch.Target(cur.Level)
	if !to.Valid() {
		return nil, &Error{Code: EINVALID, Message: "level out of range", Fields: map[string]string{"level": "must be 1-7"}}
	}
	if to == cur.Level {
		return nil, nil
	}
	now := s.now()
	if err := tx.Model(&Customer{}).Where("id = ?", ch.CustomerID).
		Updates(map[string]any{"level": to, "updated_at": now}).Error; err != nil {
		return nil, err
	}
	e := &LedgerEntry{CustomerID: ch.CustomerID, FromLevel: cur.Level, ToLevel: to, Rule: ch.Rule,
		Source: ch.Source, CreditKey: key, Actor: ch.Actor, Note: ch.Note, CreatedAt: now}
	if err := tx.Create(e).Error; err != nil {
		return nil, err
	}
	return e, nil
}

// recordCreated writes the first ledger row of customers just inserted.
func recordCreated(tx *gorm.DB, cs []*Customer, rule, source, actor string, at time.Time) error {
	if len(cs) == 0 {
		return nil
	}
	rows := make([]LedgerEntry, len(cs))
	for i, c := range cs {
		rows[i] = LedgerEntry{CustomerID: c.ID, FromLevel: 0, ToLevel: c.Level, Rule: rule, Source: source, Actor: actor, CreatedAt: at}
	}
	return insertLedger(tx, rows)
}

// SetLevel is a coordinator's manual change: any level, with a note.
func (s *Store) SetLevel(ctx context.Context, customerID int64, l Level, note string, by *User) (*LedgerEntry, error) {
	v := Invalid{}
	if !l.Valid() {
		v.Add("level", "must be 1-7 or a level name")
	}
	note = strings.TrimSpace(note)
	if note == "" {
		v.Add("note", "say why the level is set by hand")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	actor, source := "system", "manual"
	switch {
	case by != nil && by.ID != 0:
		actor, source = by.Email, "user:"+itoa(by.ID)
	case by != nil: // an API token, named in Email
		actor, source = by.Email, "api"
	}
	return s.ChangeLevel(ctx, LevelChange{CustomerID: customerID, Rule: RuleManual, Source: source,
		Actor: actor, Note: note, Target: SetTo(l)})
}

// promotedBy counts, for each campaign source, the customers that
// campaign's ledger rows moved up on balance. The ledger is append-only,
// so an undone check-in leaves its credit and adds a compensating row
// (checkin_undone) that takes the level back: a customer whose only move
// from the campaign was undone is not counted.
func promotedBy(db *gorm.DB, sources []string) (map[string]int64, error) {
	var rows []struct {
		Source string
		N      int64
	}
	if err := promotedQuery(db, sources).Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.Source] = r.N
	}
	return out, nil
}

// promotedQuery is promotedBy's query. Sources are CampaignSource values;
// the LIKE, the same as level_ledger_campaign_idx's, lets the databases
// read that index instead of the whole ledger.
func promotedQuery(db *gorm.DB, sources []string) *gorm.DB {
	moved := db.Model(&LedgerEntry{}).Select("source, customer_id").Where("source IN ? AND source LIKE 'campaign:%'", sources).
		Group("source, customer_id").Having("sum(to_level - from_level) > 0")
	return db.Table("(?) AS moved", moved).Select("source, count(*) AS n").Group("source")
}

// Ledger returns a customer's level history, oldest first.
func (s *Store) Ledger(ctx context.Context, customerID int64) ([]LedgerEntry, error) {
	if _, err := s.Customer(ctx, customerID); err != nil {
		return nil, err
	}
	var es []LedgerEntry
	err := s.db.WithContext(ctx).Where("customer_id = ?", customerID).Order("id").Find(&es).Error
	return es, err
}

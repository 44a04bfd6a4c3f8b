package campaigns

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/rapport/rapport/config"
)

// ConsentState says whether a customer may be emailed.
type ConsentState string

const (
	Subscribed   ConsentState = "subscribed"
	Unsubscribed ConsentState = "unsubscribed"
	Bounced      ConsentState = "bounced"
	SpamReported ConsentState = "spam_reported"
)

// Customer is a person or company on the relationship ladder.
type Customer struct {
	ID               int64        `json:"id"`
	ExternalID       *string      `json:"external_id"`
	Name             string       `json:"name"`
	Email            string       `json:"email"`
	Company          string       `json:"company"`
	MetroArea        string       `json:"metro_area"`
	MetroKey         string       `json:"-"`
	AnnualSpendCents int64        `json:"annual_spend_cents"`
	Level            Level        `json:"level"`
	OwnerID          *int64       `json:"owner_id"`
	Owner            *User        `json:"-" gorm:"foreignKey:OwnerID"`
	Phone            string       `json:"phone"`
	ConsentState     ConsentState `json:"consent_state"`
	ConsentChangedAt *time.Time   `json:"consent_changed_at"`
	ConsentReason    string       `json:"consent_reason"`
	LastContactedAt  *time.Time   `json:"last_contacted_at" gorm:"-"` // from customer_contacts (fillContacts)
	CreatedAt        time.Time    `json:"created_at"`
	UpdatedAt        time.Time    `json:"updated_at"`
}

// Contactable reports whether the customer may receive marketing email.
func (c *Customer) Contactable() bool { return c.ConsentState == Subscribed }

// MetroKey is how metro areas are compared: case- and space-insensitively.
func MetroKey(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// tidy trims and collapses inner whitespace: the display form of a metro.
func tidy(s string) string {
	if isTidy(s) {
		return s // most fields; an import tidies several per row
	}
	return strings.Join(strings.Fields(s), " ")
}

// isTidy reports ASCII text with single spaces between words and none
// around them; anything else, Unicode spaces included, goes through Fields.
func isTidy(s string) bool {
	space := true // a leading space is not tidy
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= utf8.RuneSelf, c == '\t', c == '\n', c == '\v', c == '\f', c == '\r':
			return false
		case c == ' ':
			if space {
				return false
			}
			space = true
		default:
			space = false
		}
	}
	return !space || s == ""
}

// CustomerInput is one customer as an import row or API call describes it.
// A nil field leaves the stored value as it is.
type CustomerInput struct {
	ExternalID       string  `json:"external_id"`
	Name             string  `json:"name"`
	Email            string  `json:"email"`
	Company          *string `json:"company"`
	MetroArea        *string `json:"metro_area"`
	AnnualSpendCents *int64  `json:"annual_spend_cents"`
	Level            *Level  `json:"level"`
	OwnerEmail       string  `json:"owner_email"`
	OwnerID          *int64  `json:"owner_id"`
	Phone            *string `json:"phone"`

	normalized bool // normalize found nothing wrong, and has nothing left to do
}

const (
	maxNameLen  = 200
	maxFieldLen = 200
)

// normalize trims the input and checks each field.
func (in *CustomerInput) normalize() Invalid {
	if in.normalized {
		return nil
	}
	v := Invalid{}
	in.ExternalID = strings.TrimSpace(in.ExternalID)
	in.Name = tidy(in.Name)
	// Limits count characters, as the messages say, not bytes: a name in
	// Cyrillic takes two bytes a letter.
	if utf8.RuneCountInString(in.ExternalID) > 100 {
		v.Add("external_id", "is longer than 100 characters")
	}
	if in.Name == "" {
		v.Add("name", "is required")
	} else if utf8.RuneCountInString(in.Name) > maxNameLen {
		v.Add("name", "is longer than %d characters", maxNameLen)
	}
	if e, err := NormalizeEmail(in.Email); err != nil {
		v.Add("email", "%q %s", strings.TrimSpace(in.Email), err.Error())
	} else {
		in.Email = e
	}
	// (Arrays, not maps: an import runs this for every row.)
	for _, f := range [...]struct {
		name string
		p    *string
	}{{"company", in.Company}, {"metro_area", in.MetroArea}, {"phone", in.Phone}} {
		if f.p != nil {
			*f.p = tidy(*f.p)
			if utf8.RuneCountInString(*f.p) > maxFieldLen {
				v.Add(f.name, "is longer than %d characters", maxFieldLen)
			}
		}
	}
	// The database refuses text that is not UTF-8, or holds a NUL; named
	// here, the row's own field is blamed instead of its whole batch.
	for _, f := range [...]struct {
		name string
		p    *string
	}{{"external_id", &in.ExternalID}, {"name", &in.Name}, {"company", in.Company}, {"metro_area", in.MetroArea}, {"phone", in.Phone},
		{"owner_email", &in.OwnerEmail}} {
		if f.p != nil && (!utf8.ValidString(*f.p) || strings.IndexByte(*f.p, 0) >= 0) {
			v.Add(f.name, "is not valid UTF-8 text")
		}
	}
	if in.AnnualSpendCents != nil && *in.AnnualSpendCents < 0 {
		v.Add("annual_spend_cents", "must not be negative")
	}
	if in.Level != nil && !in.Level.Valid() {
		v.Add("level", "must be 1-7 or a level name")
	}
	in.OwnerEmail = strings.ToLower(strings.TrimSpace(in.OwnerEmail))
	in.normalized = len(v) == 0
	return v
}

// Outcome is what an upsert did with one input.
type Outcome string

const (
	Inserted  Outcome = "inserted"
	Updated   Outcome = "updated"
	Unchanged Outcome = "unchanged"
	Rejected  Outcome = "rejected"
)

// UpsertResult is the outcome of one upsert.
type UpsertResult struct {
	Outcome  Outcome
	Customer *Customer
	Err      error    // why a row was rejected
	Warnings []string // accepted, with a caveat (an unknown owner)
}

// UpsertMeta says who upserts and why, for the ledger.
type UpsertMeta struct {
	Actor  string // "ana@example.com", "cli"
	Source string // "import:12", "api"
	Rule   string // RuleImport or RuleAPI

	// fresh is the fresh load (bulk.go) a large first import writes
	// through: customers was empty when it began and nobody else can
	// write it, so every row is new and nothing needs looking up.
	fresh *freshLoad
}

// UpsertCustomer creates or updates one customer, matched by external_id,
// else by email. A level given here only raises: lowering takes SetLevel.
func (s *Store) UpsertCustomer(ctx context.Context, in CustomerInput, meta UpsertMeta) (UpsertResult, error) {
	owners := newOwnerCache(s)
	var res []UpsertResult
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var err error
		res, err = s.upsertBatch(ctx, tx, []CustomerInput{in}, meta, owners)
		return err
	})
	if err != nil {
		return UpsertResult{}, err
	}
	if res[0].Outcome == Rejected {
		return res[0], res[0].Err
	}
	return res[0], nil
}

// ownerCache resolves owner emails to user ids once per import.
type ownerCache struct {
	s     *Store
	mu    sync.Mutex // an import upserts two batches at once on PostgreSQL
	byKey map[string]*int64
}

func newOwnerCache(s *Store) *ownerCache { return &ownerCache{s: s, byKey: map[string]*int64{}} }

func (o *ownerCache) lookup(ctx context.Context, email string) (*int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if id, ok := o.byKey[email]; ok {
		return id, nil
	}
	u, err := o.s.UserByEmail(ctx, email)
	if err != nil && ErrorCode(err) != ENOTFOUND {
		return nil, err
	}
	var id *int64
	if u != nil {
		id = &u.ID
	}
	o.byKey[email] = id
	return id, nil
}

// upsertBatch matches every input against stored customers with one query,
// inserts the new ones in bulk and updates the changed ones. Rows that fail
// validation are rejected without touching the others. A database error
// fails the whole batch (the caller retries it row by row).
func (s *Store) upsertBatch(ctx context.Context, tx *gorm.DB, ins []CustomerInput, meta UpsertMeta, owners *ownerCache) ([]UpsertResult, error) {
	out := make([]UpsertResult, len(ins))
	var exts, emails []string
	for i := range ins {
		if v := ins[i].normalize(); len(v) > 0 {
			out[i] = UpsertResult{Outcome: Rejected, Err: v.Err()}
			continue
		}
		if ins[i].ExternalID != "" {
			exts = append(exts, ins[i].ExternalID)
		}
		emails = append(emails, ins[i].Email)
	}
	var found []*Customer
	if len(emails) > 0 && meta.fresh == nil {
		q := tx.Where("email IN ?", emails)
		if len(exts) > 0 {
			q = tx.Where("email IN ? OR external_id IN ?", emails, exts)
		}
		if tx.Dialector.Name() == "postgres" {
			// Two array parameters instead of one per value.
			q = tx.Where("email = ANY(?::text[]) OR external_id = ANY(?::text[])", pgArray{emails}, pgArray{exts})
		}
		if err := q.Find(&found).Error; err != nil {
			return nil, err
		}
	}
	byExt := make(map[string]*Customer, len(found))
	byEmail := make(map[string]*Customer, len(found))
	for _, c := range found {
		if c.ExternalID != nil {
			byExt[*c.ExternalID] = c
		}
		byEmail[c.Email] = c
	}
	now := s.now()
	var created []*Customer
	type pendingUpdate struct {
		c       *Customer
		fields  map[string]any
		raiseTo Level
	}
	var updates []pendingUpdate
	for i := range ins {
		if out[i].Outcome == Rejected {
			continue
		}
		in := &ins[i]
		var warnings []string
		ownerID := in.OwnerID
		noOwner := false // owner_email names nobody
		if ownerID == nil && in.OwnerEmail != "" {
			id, err := owners.lookup(ctx, in.OwnerEmail)
			if err != nil {
				return nil, err
			}
			noOwner = id == nil
			ownerID = id
		}
		var c *Customer
		if in.ExternalID != "" {
			c = byExt[in.ExternalID]
		}
		other := byEmail[in.Email]
		switch {
		case c == nil && other != nil && other.ExternalID != nil && in.ExternalID != "":
			out[i] = UpsertResult{Outcome: Rejected, Err: &Error{Code: ECONFLICT, Message: "email belongs to another customer",
				Fields: map[string]string{"email": fmt.Sprintf("%s already belongs to customer %s", in.Email, *other.ExternalID)}}}
			continue
		case c == nil:
			c = other // matched by email (and adopts the external id, if any)
		case other != nil && other != c:
			out[i] = UpsertResult{Outcome: Rejected, Err: &Error{Code: ECONFLICT, Message: "email belongs to another customer",
				Fields: map[string]string{"email": fmt.Sprintf("%s already belongs to another customer (id %d)", in.Email, other.ID)}}}
			continue
		}
		if noOwner {
			keeps := "the customer is left without an owner"
			if c != nil && c.OwnerID != nil {
				keeps = "the customer keeps their owner"
			}
			warnings = append(warnings, fmt.Sprintf("owner_email %s is not a user; %s", in.OwnerEmail, keeps))
		}
		if c == nil {
			nc := &Customer{Name: in.Name, Email: in.Email, Level: LevelRecord, OwnerID: ownerID,
				ConsentState: Subscribed, CreatedAt: now, UpdatedAt: now}
			if in.ExternalID != "" {
				ext := in.ExternalID
				nc.ExternalID = &ext
			}
			if in.Company != nil {
				nc.Company = *in.Company
			}
			if in.MetroArea != nil {
				nc.MetroArea, nc.MetroKey = *in.MetroArea, MetroKey(*in.MetroArea)
			}
			if in.Phone != nil {
				nc.Phone = *in.Phone
			}
			if in.AnnualSpendCents != nil {
				nc.AnnualSpendCents = *in.AnnualSpendCents
			}
			if in.Level != nil {
				nc.Level = *in.Level
			}
			created = append(created, nc)
			if nc.ExternalID != nil {
				byExt[*nc.ExternalID] = nc
			}
			byEmail[nc.Email] = nc
			out[i] = UpsertResult{Outcome: Inserted, Customer: nc, Warnings: warnings}
			continue
		}
		if c.ID == 0 {
			// The same customer twice in one batch: the first row wins and
			// the later one is named, so a re-import changes nothing.
			out[i] = UpsertResult{Outcome: Rejected, Err: &Error{Code: ECONFLICT, Message: "duplicate row",
				Fields: map[string]string{"email": "the same customer appears earlier in this file"}}}
			continue
		}
		fields := map[string]any{}
		set := func(col string, cur *string, v *string) {
			if v != nil && *v != *cur {
				*cur = *v
				fields[col] = *v
			}
		}
		if in.ExternalID != "" && c.ExternalID == nil {
			ext := in.ExternalID
			c.ExternalID = &ext
			fields["external_id"] = ext
			byExt[ext] = c
		}
		set("name", &c.Name, &in.Name)
		if old := c.Email; in.Email != old {
			// A later row with the old email is someone else now, not c.
			delete(byEmail, old)
			byEmail[in.Email] = c
		}
		set("email", &c.Email, &in.Email)
		set("company", &c.Company, in.Company)
		set("phone", &c.Phone, in.Phone)
		if in.MetroArea != nil && *in.MetroArea != c.MetroArea {
			c.MetroArea, c.MetroKey = *in.MetroArea, MetroKey(*in.MetroArea)
			fields["metro_area"], fields["metro_key"] = c.MetroArea, c.MetroKey
		}
		if in.AnnualSpendCents != nil && *in.AnnualSpendCents != c.AnnualSpendCents {
			c.AnnualSpendCents = *in.AnnualSpendCents
			fields["annual_spend_cents"] = c.AnnualSpendCents
		}
		if ownerID != nil && (c.OwnerID == nil || *c.OwnerID != *ownerID) {
			c.OwnerID = ownerID
			fields["owner_id"] = *ownerID
		}
		var raise Level
		if in.Level != nil && *in.Level > c.Level {
			raise = *in.Level
		}
		if len(fields) == 0 && raise == 0 {
			out[i] = UpsertResult{Outcome: Unchanged, Customer: c, Warnings: warnings}
			continue
		}
		updates = append(updates, pendingUpdate{c: c, fields: fields, raiseTo: raise})
		out[i] = UpsertResult{Outcome: Updated, Customer: c, Warnings: warnings}
	}
	if len(created) > 0 && meta.fresh != nil {
		// Its "created" ledger rows are written when the load commits.
		if err := meta.fresh.insertCustomers(ctx, created); err != nil {
			return nil, err
		}
	} else if len(created) > 0 {
		if err := insertCustomers(tx, created); err != nil {
			return nil, err
		}
		if err := recordCreated(tx, created, RuleCreated, meta.Source, meta.Actor, now); err != nil {
			return nil, err
		}
	}
	if len(created) > 0 || len(updates) > 0 {
		defer s.forgetMetros()
	}
	for _, u := range updates {
		if len(u.fields) > 0 {
			u.fields["updated_at"] = now
			if err := tx.Model(&Customer{}).Where("id = ?", u.c.ID).Updates(u.fields).Error; err != nil {
				return nil, err
			}
		}
		if u.raiseTo != 0 {
			if _, err := s.applyLevelChange(tx, LevelChange{CustomerID: u.c.ID, Rule: meta.Rule, Source: meta.Source,
				Actor: meta.Actor, Target: AtLeast(u.raiseTo)}); err != nil {
				return nil, err
			}
			u.c.Level = u.raiseTo
		}
	}
	return out, nil
}

// Customer returns one customer with its owner.
func (s *Store) Customer(ctx context.Context, id int64) (*Customer, error) {
	var c Customer
	db := s.db.WithContext(ctx)
	if err := db.Preload("Owner").Take(&c, id).Error; err != nil {
		return nil, notFound(err, "customer", id)
	}
	cs := []Customer{c}
	if err := fillContacts(db, cs); err != nil {
		return nil, err
	}
	return &cs[0], nil
}

// SetConsent records a change of consent with when and why. It is used by
// unsubscribe links, bounces and spam reports, and by staff.
func (s *Store) SetConsent(ctx context.Context, customerID int64, state ConsentState, reason string) error {
	switch state {
	case Subscribed, Unsubscribed, Bounced, SpamReported:
	default:
		return &Error{Code: EINVALID, Message: "unknown consent state", Fields: map[string]string{
			"consent_state": "must be subscribed, unsubscribed, bounced or spam_reported"}}
	}
	res := s.db.WithContext(ctx).Model(&Customer{}).Where("id = ?", customerID).Updates(map[string]any{
		"consent_state": state, "consent_changed_at": s.now(), "consent_reason": strings.TrimSpace(reason), "updated_at": s.now()})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return Errorf(ENOTFOUND, "customer %d not found", customerID)
	}
	return nil
}

// CustomerQuery is a search over the customer list.
type CustomerQuery struct {
	Metros        []string
	MinSpendCents *int64
	MaxSpendCents *int64
	Levels        []Level
	OwnerID       *int64
	Consent       ConsentState
	Q             string // name, email or company contains
	Sort          string // name, -name, spend, -spend, level, -level, metro, -metro, updated, -updated
	Page          int    // from 1; with After or Before only the number shown
	PerPage       int
	// After and Before are cursors from a CustomerPage: the page after its
	// last row or before its first, found through the sort's index
	// (keyset paging) instead of counting past every earlier row.
	After, Before string
}

// CustomerPage is one page of a customer list.
type CustomerPage struct {
	Items    []Customer
	Total    int64
	Page     int
	PerPage  int
	NextPage *int
	// NextCursor and PrevCursor continue from this page's last and first
	// rows ("" at either end).
	NextCursor, PrevCursor string
}

var customerSorts = map[string]string{
	"name": "lower(name), id", "-name": "lower(name) DESC, id DESC",
	"spend": "annual_spend_cents, id", "-spend": "annual_spend_cents DESC, id DESC",
	"level": "level, id", "-level": "level DESC, id DESC",
	"metro": "metro_key, id", "-metro": "metro_key DESC, id DESC",
	"updated": "updated_at, id", "-updated": "updated_at DESC, id DESC",
}

// ParseCustomerSort validates a sort key ("" means by name).
func ParseCustomerSort(s string) (string, bool) {
	if s == "" {
		return "name", true
	}
	_, ok := customerSorts[s]
	return s, ok
}

// ListCustomers returns a page of customers matching q.
func (s *Store) ListCustomers(ctx context.Context, q CustomerQuery) (CustomerPage, error) {
	v := Invalid{}
	if q.Page == 0 {
		q.Page = 1
	}
	if q.Page < 1 {
		v.Add("page", "must be 1 or more")
	}
	if q.PerPage <= 0 || q.PerPage > 500 {
		q.PerPage = 50
	}
	if q.MinSpendCents != nil && *q.MinSpendCents < 0 {
		v.Add("min_spend_cents", "must not be negative")
	}
	if q.MaxSpendCents != nil && q.MinSpendCents != nil && *q.MaxSpendCents < *q.MinSpendCents {
		v.Add("max_spend_cents", "must not be below min_spend_cents")
	}
	for _, l := range q.Levels {
		if !l.Valid() {
			v.Add("level", "must be 1-7")
		}
	}
	sort, ok := ParseCustomerSort(q.Sort)
	if !ok {
		v.Add("sort", "must be one of name, spend, level, metro, updated (with - for descending)")
	}
	if err := v.Err(); err != nil {
		return CustomerPage{}, err
	}
	term := strings.ToLower(strings.TrimSpace(q.Q))
	if s.dialect != config.Postgres || term == "" {
		return s.listCustomers(s.db.WithContext(ctx), q, sort, term)
	}
	// A search is planned for its own term. Prepared once for every term,
	// PostgreSQL would settle on one plan, good for some terms and not for
	// others: a term nearly every customer matches ("example.com") should
	// read the table, a rare one the trigram index.
	var page CustomerPage
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("SET LOCAL plan_cache_mode = force_custom_plan").Error; err != nil {
			return err
		}
		var err error
		page, err = s.listCustomers(tx, q, sort, term)
		return err
	}, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead}) // one snapshot: a fresh load committing meanwhile cannot empty the count
	return page, err
}

// listCustomers lists a valid query's page on db; term is q.Q, trimmed and
// lower-cased.
func (s *Store) listCustomers(db *gorm.DB, q CustomerQuery, sort, term string) (CustomerPage, error) {
	base := db.Model(&Customer{})
	if keys := metroKeys(q.Metros); len(keys) > 0 {
		base = base.Where("metro_key IN ?", keys)
	}
	if q.MinSpendCents != nil {
		base = base.Where("annual_spend_cents >= ?", *q.MinSpendCents)
	}
	if q.MaxSpendCents != nil {
		base = base.Where("annual_spend_cents <= ?", *q.MaxSpendCents)
	}
	if len(q.Levels) > 0 {
		base = base.Where("level IN ?", q.Levels)
	}
	if q.OwnerID != nil {
		base = base.Where("owner_id = ?", *q.OwnerID)
	}
	if q.Consent != "" {
		base = base.Where("consent_state = ?", q.Consent)
	}
	filtered := len(metroKeys(q.Metros)) > 0 || q.MinSpendCents != nil || q.MaxSpendCents != nil || len(q.Levels) > 0 ||
		q.OwnerID != nil || q.Consent != "" // by anything but the search
	counted := base
	if t := term; t != "" {
		switch {
		case s.dialect == config.SQLite && utf8.RuneCountInString(t) >= 3:
			// The trigram index (migration 00008) finds the same substrings
			// in any of the three columns, case-insensitively.
			base = base.Where("id IN (SELECT rowid FROM customers_search WHERE customers_search MATCH ?)", `"`+strings.ReplaceAll(t, `"`, `""`)+`"`)
			counted = base
		case s.dialect == config.Postgres:
			ready, err := s.searchReady(db)
			if err != nil {
				return CustomerPage{}, err
			}
			where, args, table := searchWhere(t, ready)
			base = base.Where(where, args...)
			counted = base
			if table && !filtered {
				// customer_search has one row per customer (its foreign
				// key, and the triggers), so a search alone is counted
				// there, without the join to customers (1M customers, a
				// term all match: 0.76 → 0.25 s).
				like := "%" + escapeLike(t) + "%"
				counted = db.Table("customer_search").Where(`doc LIKE ? ESCAPE '\'`, like)
			}
		default:
			where, args, _ := searchWhere(t, false)
			base = base.Where(where, args...)
			counted = base
		}
	}
	page := CustomerPage{Page: q.Page, PerPage: q.PerPage}
	total, err := s.countCustomers(counted, q.After != "" || q.Before != "", term == "")
	if err != nil {
		return page, err
	}
	page.Total = total
	if total == 0 && q.After == "" && q.Before == "" { // counted just now
		page.Items = []Customer{}
		return page, nil
	}
	col := customerSortColumn[strings.TrimPrefix(sort, "-")]
	desc := strings.HasPrefix(sort, "-")
	list := base.Session(&gorm.Session{}).Preload("Owner")
	if s.dialect == config.Postgres && q.Q != "" && total < 5*int64(q.PerPage+1) {
		// PostgreSQL cannot tell how many customers a "contains" search
		// matches, and walked the sort's index until a page of them was
		// found: every customer, in index order, when few match (1M
		// customers, a search matching none: 5.3 s). Walking reads about
		// a page × customers ÷ matches rows at random, reading the table
		// once costs about a fifth of them each; with the count known,
		// a search this rare reads the table and sorts what matched.
		// OFFSET 0 keeps the planner from merging the two again.
		list = db.Table("(?) AS customers",
			gorm.Expr("? OFFSET 0", base.Session(&gorm.Session{}).Select("customers.*"))).Preload("Owner")
	}
	backwards := false
	switch {
	case q.After != "" || q.Before != "":
		cur, which := q.After, "after"
		if cur == "" {
			cur, which, backwards = q.Before, "before", true
		}
		v, id, err := decodeCursor(cur, sort)
		if err != nil {
			return page, Errorf(EINVALID, "%s is not a cursor from this list; start again from page 1", which)
		}
		// Rows past (v, id) in the order shown; before a page, walk the
		// order backwards and flip the rows afterwards.
		op := ">"
		if desc != backwards {
			op = "<"
		}
		list = list.Where("("+col+", id) "+op+" (?, ?)", v, id)
		order := customerSorts[sort]
		if backwards {
			order = customerSorts[flipSort(sort)]
		}
		list = list.Order(order).Limit(q.PerPage + 1)
	default:
		list = list.Order(customerSorts[sort]).Limit(q.PerPage + 1).Offset((q.Page - 1) * q.PerPage)
	}
	if err := list.Find(&page.Items).Error; err != nil {
		return page, err
	}
	more := len(page.Items) > q.PerPage
	if more {
		page.Items = page.Items[:q.PerPage]
	}
	if err := fillContacts(db, page.Items); err != nil {
		return page, err
	}
	if backwards {
		slices.Reverse(page.Items)
	}
	if len(page.Items) > 0 {
		first, last := &page.Items[0], &page.Items[len(page.Items)-1]
		if more || backwards {
			page.NextCursor = encodeCursor(sort, last)
		}
		if (backwards && more) || (!backwards && (q.After != "" || q.Page > 1)) {
			page.PrevCursor = encodeCursor(sort, first)
		}
	}
	if page.NextCursor != "" {
		n := q.Page + 1
		page.NextPage = &n
	}
	return page, nil
}

// customerSortColumn is the leading ORDER BY expression of each sort.
var customerSortColumn = map[string]string{"name": "lower(name)", "spend": "annual_spend_cents",
	"level": "level", "metro": "metro_key", "updated": "updated_at"}

func flipSort(sort string) string {
	if strings.HasPrefix(sort, "-") {
		return sort[1:]
	}
	return "-" + sort
}

// A cursor is the sort key and id of a row, so the next page starts right
// after it. It names its sort, so a cursor from another order is refused.
type cursor struct {
	Sort string `json:"s"`
	V    any    `json:"v"`
	ID   int64  `json:"i"`
}

func encodeCursor(sort string, c *Customer) string {
	var v any
	switch strings.TrimPrefix(sort, "-") {
	case "name":
		v = strings.ToLower(c.Name)
	case "spend":
		v = c.AnnualSpendCents
	case "level":
		v = int(c.Level)
	case "metro":
		v = c.MetroKey
	case "updated":
		v = c.UpdatedAt.UTC().Format(time.RFC3339Nano)
	}
	b, _ := json.Marshal(cursor{Sort: sort, V: v, ID: c.ID})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s, sort string) (any, int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, 0, err
	}
	var c cursor
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&c); err != nil {
		return nil, 0, err
	}
	if c.Sort != sort || c.ID <= 0 {
		return nil, 0, errors.New("cursor from another list")
	}
	switch strings.TrimPrefix(sort, "-") {
	case "name", "metro":
		if v, ok := c.V.(string); ok {
			return v, c.ID, nil
		}
	case "spend", "level":
		if n, ok := c.V.(json.Number); ok {
			if v, err := n.Int64(); err == nil {
				return v, c.ID, nil
			}
		}
	case "updated":
		if v, ok := c.V.(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				return t, c.ID, nil
			}
		}
	}
	return nil, 0, errors.New("bad cursor value")
}

// countCustomers counts a filtered list. At a million customers a count
// takes tens of milliseconds, so while someone walks the pages of a list
// (reuse) the count made for its earlier pages serves for a few seconds.
// Without a search term it plans no parallel index scan (see
// withoutParallelIndexScans); a search's count keeps the planner's choice,
// which read a term every customer matches in 214-252 ms, and without
// parallel index scans 360-613 ms.
func (s *Store) countCustomers(q *gorm.DB, reuse, plain bool) (int64, error) {
	stmt := q.Session(&gorm.Session{DryRun: true}).Count(new(int64)).Statement
	key := stmt.SQL.String() + fmt.Sprint(stmt.Vars...)
	s.countsMu.Lock()
	c, ok := s.counts[key]
	s.countsMu.Unlock()
	if reuse && ok && time.Since(c.at) < countTTL {
		return c.n, nil
	}
	var n int64
	var err error
	if _, inTx := q.Statement.ConnPool.(gorm.TxCommitter); plain && !inTx {
		err = s.withoutParallelIndexScans(q.Statement.Context, func(tx *gorm.DB) error {
			// q's own statement, on the transaction's connection (a
			// Session with a context clones the statement it changes).
			c := q.Session(&gorm.Session{Context: q.Statement.Context})
			c.Statement.ConnPool = tx.Statement.ConnPool
			return c.Count(&n).Error
		})
	} else {
		err = q.Session(&gorm.Session{}).Count(&n).Error
	}
	if err != nil {
		return 0, err
	}
	s.countsMu.Lock()
	if s.counts == nil || len(s.counts) > 1000 {
		s.counts = map[string]cachedCount{}
	}
	s.counts[key] = cachedCount{n: n, at: time.Now()}
	s.countsMu.Unlock()
	return n, nil
}

const countTTL = 10 * time.Second

type cachedCount struct {
	n  int64
	at time.Time
}

// Metros lists the metro areas in use with their customer counts.
// Counting them reads every customer's index entry, and the
// customers page and the builder ask on every view, so the answer is kept
// until customers are added or changed, or for a minute at most (a
// customer changed by another process shows up within that minute).
func (s *Store) Metros(ctx context.Context) ([]MetroCount, error) {
	s.metrosMu.Lock()
	ms, at := s.metros, s.metrosAt
	s.metrosMu.Unlock()
	if ms != nil && time.Since(at) < time.Minute {
		return ms, nil
	}
	// Counted from the (metro, id) index alone, then each metro named as
	// its first customer spelled it: min(metro_area) over every row read
	// the whole table (1M customers on PostgreSQL 770 → 126-240 ms;
	// SQLite at 100,000, 0.10-0.14 → 0.01-0.02 s).
	err := s.db.WithContext(ctx).Raw(`SELECT m.metro_key AS key, m.customers,
		(SELECT c.metro_area FROM customers c WHERE c.metro_key = m.metro_key ORDER BY c.id LIMIT 1) AS name
		FROM (SELECT metro_key, count(*) AS customers FROM customers WHERE metro_key <> '' GROUP BY metro_key) m
		ORDER BY m.metro_key`).Scan(&ms).Error
	if err != nil {
		return nil, err
	}
	if ms == nil {
		ms = []MetroCount{}
	}
	s.metrosMu.Lock()
	s.metros, s.metrosAt = ms, time.Now()
	s.metrosMu.Unlock()
	return ms, nil
}

// forgetMetros drops the kept metro counts after customers change.
func (s *Store) forgetMetros() {
	s.metrosMu.Lock()
	s.metros = nil
	s.metrosMu.Unlock()
}

// MetroCount is a metro area and how many customers it has.
type MetroCount struct {
	Name      string
	Key       string
	Customers int64
}

func metroKeys(ms []string) []string {
	var keys []string
	seen := map[string]bool{}
	for _, m := range ms {
		k := MetroKey(m)
		if k != "" && !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

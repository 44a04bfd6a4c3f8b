package campaigns

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"

	"github.com/rapport/rapport/config"
)

// SeedOptions shape synthetic customers.
type SeedOptions struct {
	Customers int
	Metros    int    // how many metro areas to spread them over (1-len(seedMetros))
	Seed      uint64 // the same seed gives the same customers
	Actor     string
	OwnerIDs  []int64 // reps to spread ownership over; may be empty
	// History adds a few believable past ledger moves per customer, and
	// past contacts for a third of them (demo). Without it the customers
	// are as if just imported: Rapport has never contacted them.
	History bool
	// Tag marks this run's emails and external ids so that repeated seeds
	// never collide; empty means a tag from the clock.
	Tag string
}

var seedMetros = []string{"Chicago", "Evanston", "Milwaukee", "Indianapolis", "Madison", "Detroit",
	"Minneapolis", "St. Louis", "Columbus", "Cleveland", "Cincinnati", "Kansas City", "Omaha", "Des Moines",
	"Grand Rapids", "Louisville"}

var (
	firstNames = []string{"Noah", "Zoey", "Lily", "Nora", "Liam", "Emma", "Olivia", "Ava", "Mateo", "Sofia", "Elijah",
		"Amelia", "James", "Mia", "Lucas", "Harper", "Aarav", "Chloé", "José", "Zoë", "Björn", "Priya", "Wei", "Fatima",
		"Kwame", "Ingrid", "Diego", "Hana", "Omar", "Grace"}
	lastNames = []string{"Hernandez", "Harris", "Walker", "Johnson", "Nguyen", "Kowalski", "O'Brien", "Smith", "García",
		"Müller", "Patel", "Kim", "Okafor", "Rossi", "Novak", "Larsen", "Chen", "Haddad", "Silva", "Brown"}
	companyWords = []string{"Lincoln Park", "North Shore", "Prairie", "Gold Coast", "Lakeview", "Riverside", "Oak",
		"Union", "Midway", "Harbor"}
	companyKinds = []string{"Vet", "Bakery", "Tech", "Salon", "Dental", "Logistics", "Design", "Builders", "Café", "Law"}
)

// asciiLocal makes a name into an email's local part.
var asciiLocal = strings.NewReplacer("'", "", "é", "e", "ë", "e", "ö", "o", "ü", "u", "í", "i")

// Seed inserts synthetic customers in large batches and returns how many
// it inserted. Emails are unique per seed run. A large seed into an empty
// table on PostgreSQL is all or nothing (a fresh load); otherwise each
// batch commits alone.
func (s *Store) Seed(ctx context.Context, opt SeedOptions) (int, error) {
	if opt.Customers < 1 {
		return 0, &Error{Code: EINVALID, Message: "nothing to seed", Fields: map[string]string{"customers": "must be at least 1"}}
	}
	if opt.Metros <= 0 || opt.Metros > len(seedMetros) {
		opt.Metros = min(5, len(seedMetros))
	}
	rng := rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x9e3779b97f4a7c15))
	run := opt.Tag
	if run == "" {
		run = fmt.Sprintf("s%d", time.Now().UnixNano()%1_000_000_000)
	}
	now := s.now()
	const batch = 10000 // one statement per batch on PostgreSQL (insertCustomers); SQLite splits it by 1000
	done := 0
	// Into an empty table on PostgreSQL, every batch goes into one fresh
	// load (bulk.go), one after another while the next is drawn. Otherwise
	// each batch commits alone, two at once on PostgreSQL (two backends,
	// two cores); SQLite has one writer.
	// (The demo's History seed is small and writes more than customers.)
	var fl *freshLoad
	if !opt.History {
		fl = s.beginFreshLoad(ctx, opt.Customers)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(1)
	if s.dialect == config.Postgres && fl == nil {
		g.SetLimit(2)
	}
	var written atomic.Int64
	for done < opt.Customers && gctx.Err() == nil {
		n := min(batch, opt.Customers-done)
		cs := make([]*Customer, n)
		for i := range cs {
			k := done + i
			first, last := firstNames[rng.IntN(len(firstNames))], lastNames[rng.IntN(len(lastNames))]
			metro := seedMetros[min(int(rng.ExpFloat64()*float64(opt.Metros)/2.5), opt.Metros-1)]
			ext := fmt.Sprintf("%s-%07d", strings.ToUpper(run), k+1)
			local := asciiLocal.Replace(strings.ToLower(first + "." + last))
			c := &Customer{
				ExternalID:       &ext,
				Name:             first + " " + last,
				Email:            fmt.Sprintf("%s.%d@%s.example.com", local, k+1, run),
				Company:          companyWords[rng.IntN(len(companyWords))] + " " + companyKinds[rng.IntN(len(companyKinds))],
				MetroArea:        metro,
				MetroKey:         MetroKey(metro),
				AnnualSpendCents: seedSpend(rng),
				Level:            seedLevel(rng),
				Phone:            fmt.Sprintf("+1 312 555 %04d", rng.IntN(10000)),
				ConsentState:     Subscribed,
				CreatedAt:        now,
				UpdatedAt:        now,
			}
			if len(opt.OwnerIDs) > 0 && rng.IntN(4) > 0 {
				id := opt.OwnerIDs[rng.IntN(len(opt.OwnerIDs))]
				c.OwnerID = &id
			}
			switch r := rng.IntN(100); {
			case r < 3:
				c.ConsentState, c.ConsentReason = Unsubscribed, "unsubscribe link"
			case r < 5:
				c.ConsentState, c.ConsentReason = Bounced, "mailbox does not exist"
			}
			if c.ConsentState != Subscribed {
				at := now.Add(-time.Duration(rng.IntN(200)) * 24 * time.Hour)
				c.ConsentChangedAt = &at
			}
			// With History, a third were contacted in the last 120 days
			// (drawn either way, so a seed gives the same customers).
			if rng.IntN(3) == 0 {
				at := now.Add(-time.Duration(rng.IntN(120*24)) * time.Hour)
				c.LastContactedAt = &at
			}
			cs[i] = c
		}
		// The history is drawn here, in order, so a seed gives the same data
		// however the batches interleave; only the writes run concurrently.
		hrng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
		g.Go(func() error {
			if fl != nil {
				if err := fl.insertCustomers(gctx, cs); err != nil {
					return err
				}
				written.Add(int64(n))
				return nil
			}
			err := s.tx(gctx, func(tx *gorm.DB) error {
				if err := insertCustomers(tx, cs); err != nil {
					return err
				}
				if !opt.History {
					return recordCreated(tx, cs, RuleCreated, "seed", opt.Actor, now)
				}
				if err := insertContacts(tx, cs); err != nil {
					return err
				}
				return seedHistory(tx, hrng, cs, opt.Actor, now)
			})
			if err == nil {
				written.Add(int64(n))
			}
			return err
		})
		done += n
	}
	defer s.forgetMetros()
	err := g.Wait()
	if fl != nil {
		if err != nil {
			fl.rollback()
			return 0, fmt.Errorf("seed (nothing was written): %w", err)
		}
		if err := fl.commit(ctx, "seed", opt.Actor); err != nil {
			return 0, fmt.Errorf("seed (nothing was written): %w", err)
		}
		return done, nil
	}
	if err != nil {
		return int(written.Load()), fmt.Errorf("seed: %w", err)
	}
	return done, nil
}

// seedHistory writes a believable ledger for demo customers: created at a
// low level months ago, then promoted by past outreach to where they stand.
func seedHistory(tx *gorm.DB, rng *rand.Rand, cs []*Customer, actor string, now time.Time) error {
	steps := []struct {
		to   Level
		rule string
	}{{LevelContact, "delivered"}, {LevelProspect, "rsvp"}, {LevelAcquaintance, "attended"},
		{LevelCustomer, "first_purchase"}, {LevelGoodCustomer, "repeat_purchase"}, {LevelFriend, "referral"}}
	var rows []LedgerEntry
	for _, c := range cs {
		at := now.Add(-time.Duration(200+rng.IntN(200)) * 24 * time.Hour)
		start := LevelRecord
		if c.Level > 1 && rng.IntN(3) == 0 {
			start = Level(1 + rng.IntN(int(c.Level)))
		}
		rows = append(rows, LedgerEntry{CustomerID: c.ID, FromLevel: 0, ToLevel: start, Rule: RuleCreated, Source: "demo", Actor: actor, CreatedAt: at})
		cur := start
		for _, st := range steps {
			if st.to > c.Level || st.to <= cur {
				continue
			}
			at = at.Add(time.Duration(5+rng.IntN(40)) * 24 * time.Hour)
			key := st.rule + "|demo"
			rows = append(rows, LedgerEntry{CustomerID: c.ID, FromLevel: cur, ToLevel: st.to, Rule: st.rule,
				Source: "demo", CreditKey: &key, Actor: "system", CreatedAt: at})
			cur = st.to
		}
	}
	return insertLedger(tx, rows)
}

// seedSpend draws an annual spend: most customers small, a long tail large.
func seedSpend(rng *rand.Rand) int64 {
	dollars := 50 + rng.ExpFloat64()*1500
	if rng.IntN(10) == 0 {
		dollars += rng.Float64() * 40000
	}
	return int64(dollars) * 100
}

func seedLevel(rng *rand.Rand) Level {
	weights := []int{20, 22, 18, 15, 12, 8, 5}
	r := rng.IntN(100)
	for i, w := range weights {
		if r < w {
			return Level(i + 1)
		}
		r -= w
	}
	return LevelFriend
}

// DemoUsers are created by `serve --demo` on an empty database. Only the
// admin's password is printed; an admin can reset the others'.
var DemoUsers = []NewUser{
	{Email: "coordinator@example.com", Name: "Casey Coordinator", Role: RoleCoordinator},
	{Email: "rep1@example.com", Name: "Riley Rep", Role: RoleRep},
	{Email: "rep2@example.com", Name: "Robin Rep", Role: RoleRep},
	{Email: "rep3@example.com", Name: "Reese Rep", Role: RoleRep},
	{Email: "finance@example.com", Name: "Frankie Finance", Role: RoleFinance},
}

// DemoAdminEmail is the admin `serve --demo` creates.
const DemoAdminEmail = "admin@example.com"

// Demo fills an empty database with an admin, staff, and about 500
// customers with history. It returns the admin's generated password, or ""
// when the database already had users (nothing is touched then).
func (s *Store) Demo(ctx context.Context) (string, error) {
	n, err := s.CountUsers(ctx)
	if err != nil || n > 0 {
		return "", err
	}
	password := GeneratePassword()
	if _, err := s.CreateUser(ctx, NewUser{Email: DemoAdminEmail, Name: "Alex Admin", Role: RoleAdmin, Password: password}); err != nil {
		return "", err
	}
	var reps []int64
	for _, u := range DemoUsers {
		u.Password = GeneratePassword()
		created, err := s.CreateUser(ctx, u)
		if err != nil {
			return "", err
		}
		if created.Role == RoleRep {
			reps = append(reps, created.ID)
		}
	}
	if _, err := s.Seed(ctx, SeedOptions{Customers: 500, Metros: 5, Seed: 2026, Actor: "demo", OwnerIDs: reps, History: true, Tag: "demo"}); err != nil {
		return "", err
	}
	return password, nil
}

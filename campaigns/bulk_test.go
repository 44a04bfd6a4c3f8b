package campaigns_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
	"github.com/rapport/rapport/config"
)

// schemaOf lists customers' and the ledger's indexes and constraints, and
// customers' own triggers, as PostgreSQL would write them to create them
// again.
func schemaOf(t *testing.T, s *campaigns.Store) []string {
	t.Helper()
	var defs []string
	require.NoError(t, s.DB().Raw(`SELECT indexdef FROM pg_indexes
		WHERE schemaname = current_schema() AND tablename IN ('customers', 'level_ledger')
		UNION ALL
		SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
		WHERE conrelid IN ('customers'::regclass, 'level_ledger'::regclass)
		UNION ALL
		SELECT pg_get_triggerdef(oid) || ' ' || tgenabled::text FROM pg_trigger
		WHERE tgrelid = 'customers'::regclass AND NOT tgisinternal
		ORDER BY 1`).Scan(&defs).Error)
	require.NotEmpty(t, defs)
	return defs
}

// createdRowsMatch counts customers whose one "created" ledger row names
// their level, the given source, and when they were created.
func createdRowsMatch(t *testing.T, s *campaigns.Store, source string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, s.DB().Raw(`SELECT count(*) FROM customers c JOIN level_ledger l ON l.customer_id = c.id
		WHERE l.rule = ? AND l.from_level = 0 AND l.to_level = c.level AND l.source = ? AND l.created_at = c.created_at
		  AND (SELECT count(*) FROM level_ledger x WHERE x.customer_id = c.id) = 1`, campaigns.RuleCreated, source).Scan(&n).Error)
	return n
}

func TestFreshSeedPutsEveryIndexAndConstraintBack(t *testing.T) {
	s := campaignstest.Open(t, campaignstest.Postgres)
	s.SetFreshLoadMin(100)
	ctx := context.Background()
	before := schemaOf(t, s)
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	defer slog.SetDefault(prev)

	n, err := s.Seed(ctx, campaigns.SeedOptions{Customers: 2500, Metros: 4, Seed: 7, Actor: "t", Tag: "fresh"})
	require.NoError(t, err)
	require.Equal(t, 2500, n)
	require.EqualValues(t, 1, s.FreshLoads(), "an empty table takes the fresh path")
	// Its phases, in seconds (scripts/bench/run reads the rebuild's).
	require.Regexp(t, `msg="bulk load committed" copy=[0-9.]+s ledger=[0-9.]+s rebuild=[0-9.]+s commit=[0-9.]+s`, logs.String())
	require.Equal(t, before, schemaOf(t, s))
	require.EqualValues(t, 2500, createdRowsMatch(t, s, "seed"))

	// The sequences moved past what the load took.
	r, err := s.UpsertCustomer(ctx, campaigns.CustomerInput{Name: "After Load", Email: "after@example.com"},
		campaigns.UpsertMeta{Actor: "t", Source: "api", Rule: campaigns.RuleAPI})
	require.NoError(t, err)
	require.Greater(t, r.Customer.ID, int64(2500))
	led, err := s.Ledger(ctx, r.Customer.ID)
	require.NoError(t, err)
	require.Len(t, led, 1)
	// The constraints work again.
	var email string
	require.NoError(t, s.DB().Raw("SELECT email FROM customers ORDER BY id LIMIT 1").Scan(&email).Error)
	err = s.DB().Exec(`INSERT INTO customers (name, email, created_at, updated_at) VALUES ('Twin', ?, now(), now())`, email).Error
	require.Error(t, err, "email is unique again")
	err = s.DB().Exec(`INSERT INTO level_ledger (customer_id, from_level, to_level, rule, created_at) VALUES (999999, 1, 2, 'x', now())`).Error
	require.Error(t, err, "the ledger's foreign key is back")
	err = s.DB().Exec(`INSERT INTO level_ledger (id, customer_id, from_level, to_level, rule, created_at)
		SELECT id, customer_id, 1, 2, 'x', now() FROM level_ledger LIMIT 1`).Error
	require.ErrorContains(t, err, "level_ledger_pkey", "the ledger's primary key is back")

	// A table with customers in it takes the ordinary path.
	n, err = s.Seed(ctx, campaigns.SeedOptions{Customers: 500, Metros: 4, Seed: 8, Actor: "t", Tag: "more"})
	require.NoError(t, err)
	require.Equal(t, 500, n)
	require.EqualValues(t, 1, s.FreshLoads())
	require.EqualValues(t, 3000, createdRowsMatch(t, s, "seed"))
}

// A fresh load writes its customers in COPY's binary format
// (appendCustomerCopy). The same seed through the fresh path and then the
// ordinary one stores the same customers field for field, times included;
// an import through the fresh path, read back by importing the file
// again, finds every row unchanged, those without an external id too.
func TestFreshLoadStoresWhatTheOrdinaryPathStores(t *testing.T) {
	s := campaignstest.Open(t, campaignstest.Postgres)
	s.SetFreshLoadMin(100)
	ctx := context.Background()
	var owners []int64
	for _, e := range []string{"rep1@example.com", "rep2@example.com"} {
		u, err := s.CreateUser(ctx, campaigns.NewUser{Email: e, Name: e, Role: campaigns.RoleRep, Password: "correct horse battery"})
		require.NoError(t, err)
		owners = append(owners, u.ID)
	}
	seed := func(tag string) (time.Time, time.Time) {
		before := time.Now().Truncate(time.Microsecond)
		_, err := s.Seed(ctx, campaigns.SeedOptions{Customers: 400, Metros: 6, Seed: 11, Actor: "t", Tag: tag, OwnerIDs: owners})
		require.NoError(t, err)
		return before, time.Now()
	}
	from, to := seed("fresh")
	require.EqualValues(t, 1, s.FreshLoads())
	seed("plain")
	require.EqualValues(t, 1, s.FreshLoads(), "the second seed takes the ordinary path")

	type row struct {
		Name, Email, Company, MetroArea, MetroKey, Phone, ConsentState, ConsentReason, ExternalID string
		AnnualSpendCents                                                                          int64
		Level                                                                                     int
		OwnerID                                                                                   *int64
		ConsentAfter                                                                              *float64 // seconds from created_at
		Same                                                                                      bool     // updated_at = created_at
	}
	rows := func(tag string) []row {
		var out []row
		require.NoError(t, s.DB().Raw(`SELECT name, replace(email, ?, '') AS email, company, metro_area, metro_key, phone,
				consent_state, consent_reason, substr(external_id, ?) AS external_id, annual_spend_cents, level, owner_id,
				extract(epoch FROM consent_changed_at - created_at)::float8 AS consent_after, updated_at = created_at AS same
			FROM customers WHERE email LIKE ? ORDER BY id`, "@"+tag+".example.com", len(tag)+1, "%@"+tag+".example.com").
			Scan(&out).Error)
		return out
	}
	fresh, plain := rows("fresh"), rows("plain")
	require.Len(t, fresh, 400)
	require.Equal(t, plain, fresh)
	var owned, withdrew int
	for _, r := range fresh {
		if r.OwnerID != nil {
			owned++
		}
		if r.ConsentAfter != nil {
			withdrew++
		}
	}
	require.Positive(t, owned, "owners are copied")
	require.Positive(t, withdrew, "consent changes are copied")
	var first, last time.Time
	require.NoError(t, s.DB().Raw(`SELECT min(created_at) FROM customers WHERE email LIKE '%@fresh.example.com'`).Scan(&first).Error)
	require.NoError(t, s.DB().Raw(`SELECT max(created_at) FROM customers WHERE email LIKE '%@fresh.example.com'`).Scan(&last).Error)
	require.False(t, first.Before(from) || last.After(to), "created_at %v-%v should be within the seed's %v-%v", first, last, from, to)

	// An import through the fresh path, half its rows without an external id.
	s2 := campaignstest.Open(t, campaignstest.Postgres)
	s2.SetFreshLoadMin(100)
	var b strings.Builder
	b.WriteString("external_id,name,email,company,metro_area,annual_spend,level,phone\n")
	for i := 0; i < 200; i++ {
		ext := ""
		if i%2 == 0 {
			ext = fmt.Sprintf("X%d", i)
		}
		fmt.Fprintf(&b, "%s,Zoë Ærøskøbing %d,z%d@example.com,Café %d,San José,$%d.%02d,%d,+1 312 555 %04d\n", ext, i, i, i, i*37, i%100, 1+i%7, i)
	}
	csv := b.String()
	res, err := s2.ImportCustomers(ctx, strings.NewReader(csv), campaigns.ImportOptions{Actor: "t", Size: int64(len(csv))})
	require.NoError(t, err)
	require.EqualValues(t, 1, s2.FreshLoads())
	require.EqualValues(t, 200, res.Inserted)
	res, err = s2.ImportCustomers(ctx, strings.NewReader(csv), campaigns.ImportOptions{Actor: "t", Size: int64(len(csv))})
	require.NoError(t, err)
	require.EqualValues(t, 200, res.Unchanged, "every stored field reads back as imported")
	var noExt int64
	require.NoError(t, s2.DB().Raw("SELECT count(*) FROM customers WHERE external_id IS NULL").Scan(&noExt).Error)
	require.EqualValues(t, 100, noExt)
}

// A customer's ledger is found through an index, not by reading the whole
// ledger: their history page, and the cascade when a customer is deleted.
// Since 00017 the unique (customer_id, credit_key) index is the only one by
// customer; made partial (credit keys only), it left both to scan.
func TestLedgerIsReadByCustomerThroughAnIndexOnPostgres(t *testing.T) {
	s := campaignstest.Open(t, campaignstest.Postgres)
	addCustomers(t, s, 3, "ledgerix")
	for _, q := range []string{
		"SELECT * FROM level_ledger WHERE customer_id = 1 ORDER BY id", // Store.Ledger
		"DELETE FROM ONLY level_ledger WHERE customer_id = 1",          // the foreign key's cascade
	} {
		var plan []string
		require.NoError(t, s.DB().Transaction(func(tx *gorm.DB) error {
			// A table this small would be read whole anyway; off, a
			// sequential scan is chosen only where no index can serve.
			if err := tx.Exec("SET LOCAL enable_seqscan = off").Error; err != nil {
				return err
			}
			return tx.Raw("EXPLAIN " + q).Scan(&plan).Error
		}))
		text := strings.Join(plan, "\n")
		require.Contains(t, text, "Index Cond: (customer_id = ", "%s:\n%s", q, text)
	}
}

// A campaign's promotions (its page's funnel and ROI, the ROI report) are
// read from the campaigns' own ledger rows, not from every row: a seed or
// an import writes a million that are no campaign's.
func TestPromotionsAreReadThroughTheCampaignIndex(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		q := campaigns.PromotionsSQL(s.DB(), []string{campaigns.CampaignSource(1), campaigns.CampaignSource(2)})
		var plan []string
		if s.Dialect() == config.Postgres {
			require.NoError(t, s.DB().Transaction(func(tx *gorm.DB) error {
				// As above: a sequential scan only where no index serves.
				if err := tx.Exec("SET LOCAL enable_seqscan = off").Error; err != nil {
					return err
				}
				return tx.Raw("EXPLAIN " + q).Scan(&plan).Error
			}))
		} else {
			var rows []struct{ Detail string }
			require.NoError(t, s.DB().Raw("EXPLAIN QUERY PLAN "+q).Scan(&rows).Error)
			for _, r := range rows {
				plan = append(plan, r.Detail)
			}
		}
		text := strings.Join(plan, "\n")
		require.Contains(t, text, "level_ledger_campaign_idx", "%s:\n%s", q, text)
	})
}

// The credit key's unique index holds only the rows that carry a key (a
// rule's credits), and still refuses a second credit for one customer, rule
// and source on either database.
func TestLedgerRefusesASecondCreditForTheSameKey(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ids := addCustomers(t, s, 2, "credkey")
		row := func(customer int64, key any) error {
			return s.DB().Exec(`INSERT INTO level_ledger (customer_id, from_level, to_level, rule, credit_key, created_at)
				VALUES (?, 1, 2, 'attended', ?, CURRENT_TIMESTAMP)`, customer, key).Error
		}
		require.NoError(t, row(ids[0], "attended|campaign:1"))
		require.Error(t, row(ids[0], "attended|campaign:1"), "the same credit twice")
		require.NoError(t, row(ids[1], "attended|campaign:1"), "another customer, the same key")
		require.NoError(t, row(ids[0], "attended|campaign:2"), "the same customer, another source")
		require.NoError(t, row(ids[0], nil))
		require.NoError(t, row(ids[0], nil), "rows without a key are never compared")
	})
}

// freshCSV is rows customers, with the problems an import must name by
// row on either path.
func freshCSV(rows int) string {
	var b strings.Builder
	b.WriteString("external_id,name,email,metro_area,annual_spend,level\n")
	for i := 0; i < rows; i++ {
		switch i {
		case 10: // row 12
			b.WriteString("F10,Bad Email,not-an-email,Chicago,$5,2\n")
		case 20: // row 22: the same email as row 2
			b.WriteString("F20,Twin,f0@example.com,Chicago,$5,2\n")
		case 300: // row 302, past the first 4 KB, which are checked as a whole
			b.WriteString("F300,Caf\xe9 Latin-1,f300@example.com,Chicago,$5,2\n")
		default:
			fmt.Fprintf(&b, "F%d,Person %d,f%d@example.com,Metro %d,$%d.00,%d\n", i, i, i, i%5, i, 1+i%7)
		}
	}
	return b.String()
}

func TestFreshImportRejectsBadRowsAndLandsTheRest(t *testing.T) {
	s := campaignstest.Open(t, campaignstest.Postgres)
	s.SetFreshLoadMin(100)
	ctx := context.Background()
	before := schemaOf(t, s)
	csv := freshCSV(12000)
	res, err := s.ImportCustomers(ctx, strings.NewReader(csv), campaigns.ImportOptions{Actor: "t", Size: int64(len(csv))})
	require.NoError(t, err)
	require.EqualValues(t, 1, s.FreshLoads())
	require.EqualValues(t, 11997, res.Inserted)
	require.EqualValues(t, 3, res.Rejected)
	byRow := map[int]string{}
	for _, p := range res.Problems {
		byRow[p.Row] += p.Field + ": " + p.Reason
	}
	require.Contains(t, byRow[12], "email")
	require.Contains(t, byRow[22], "row 2")
	require.Equal(t, "name: is not valid UTF-8 text", byRow[302])
	require.Equal(t, before, schemaOf(t, s))
	require.EqualValues(t, 11997, createdRowsMatch(t, s, fmt.Sprintf("import:%d", res.ID)))

	im, err := s.GetImport(ctx, res.ID)
	require.NoError(t, err)
	require.Equal(t, "done", im.Status)
	require.EqualValues(t, 11997, im.Inserted)
	page, err := s.ListCustomers(ctx, campaigns.CustomerQuery{Metros: []string{"metro 3"}, Levels: []campaigns.Level{4}})
	require.NoError(t, err)
	require.NotEmpty(t, page.Items, "the list finds them through the rebuilt indexes")

	// Importing the same file again updates nothing and inserts nothing.
	res, err = s.ImportCustomers(ctx, strings.NewReader(csv), campaigns.ImportOptions{Actor: "t", Size: int64(len(csv))})
	require.NoError(t, err)
	require.EqualValues(t, 1, s.FreshLoads(), "customers is not empty any more")
	require.EqualValues(t, 11997, res.Unchanged)
	require.Zero(t, res.Inserted)
}

// failingReader gives its text and then fails, as an upload cut off does.
type failingReader struct{ r io.Reader }

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errors.New("connection reset by peer")
	}
	return n, err
}

func TestFreshImportThatFailsLeavesNothing(t *testing.T) {
	s := campaignstest.Open(t, campaignstest.Postgres)
	s.SetFreshLoadMin(100)
	ctx := context.Background()
	before := schemaOf(t, s)
	csv := freshCSV(12000)
	// Cut off mid-row, after several batches went in.
	cut := csv[:len(csv)-40]
	res, err := s.ImportCustomers(ctx, &failingReader{strings.NewReader(cut)}, campaigns.ImportOptions{Actor: "t", Size: int64(len(csv))})
	require.Error(t, err)
	require.EqualValues(t, 1, s.FreshLoads())
	require.Contains(t, err.Error(), "connection reset by peer")
	require.Contains(t, err.Error(), "nothing was imported")
	var count int64
	require.NoError(t, s.DB().Raw("SELECT (SELECT count(*) FROM customers) + (SELECT count(*) FROM level_ledger)").Scan(&count).Error)
	require.Zero(t, count)
	require.Equal(t, before, schemaOf(t, s))
	im, err := s.GetImport(ctx, res.ID)
	require.NoError(t, err)
	require.Equal(t, "failed", im.Status)
	require.Zero(t, im.Inserted, "the run does not claim rows that were rolled back")
	require.Contains(t, im.Error, "nothing was imported")

	// The whole file then goes in, fresh again.
	res, err = s.ImportCustomers(ctx, strings.NewReader(csv), campaigns.ImportOptions{Actor: "t", Size: int64(len(csv))})
	require.NoError(t, err)
	require.EqualValues(t, 2, s.FreshLoads())
	require.EqualValues(t, 11997, res.Inserted)
}

func TestLargeImportIntoAStockedTableMatchesWhatIsThere(t *testing.T) {
	s := campaignstest.Open(t, campaignstest.Postgres)
	s.SetFreshLoadMin(100)
	ctx := context.Background()
	_, err := s.UpsertCustomer(ctx, campaigns.CustomerInput{ExternalID: "F5", Name: "Old Name", Email: "f5@example.com"},
		campaigns.UpsertMeta{Actor: "t", Source: "api", Rule: campaigns.RuleAPI})
	require.NoError(t, err)
	csv := freshCSV(3000)
	res, err := s.ImportCustomers(ctx, strings.NewReader(csv), campaigns.ImportOptions{Actor: "t", Size: int64(len(csv))})
	require.NoError(t, err)
	require.Zero(t, s.FreshLoads())
	require.EqualValues(t, 1, res.Updated)
	require.EqualValues(t, 2996, res.Inserted)
}

func TestFreshLoadDoesNotWaitLongForABusyTable(t *testing.T) {
	s := campaignstest.Open(t, campaignstest.Postgres)
	s.SetFreshLoadMin(100)
	ctx := context.Background()
	// A long report holds customers: the load gives up on the fresh path
	// after two seconds and takes the ordinary one beside it.
	reader := s.DB().Begin()
	require.NoError(t, reader.Error)
	defer reader.Rollback()
	require.NoError(t, reader.Exec("SELECT count(*) FROM customers").Error)
	n, err := s.Seed(ctx, campaigns.SeedOptions{Customers: 300, Metros: 2, Seed: 3, Actor: "t", Tag: "busy"})
	require.NoError(t, err)
	require.Equal(t, 300, n)
	require.Zero(t, s.FreshLoads())
	require.EqualValues(t, 300, createdRowsMatch(t, s, "seed"))
}

func TestImportNamesTextThatIsNotUTF8(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		// Past the first 4 KB, which are checked as a whole.
		var b strings.Builder
		b.WriteString("name,email,company,owner_email\n")
		for i := 0; i < 200; i++ {
			fmt.Fprintf(&b, "Fine %d,fine%d@example.com,Ok,\n", i, i)
		}
		csv := b.String() + "Caf\xe9,cafe@example.com,Ok,\nNul,nul@example.com,A\x00B,\nOwner,owner@example.com,Ok,r\xe9p@example.com\n"
		res, err := s.ImportCustomers(context.Background(), strings.NewReader(csv), campaigns.ImportOptions{Actor: "t"})
		require.NoError(t, err)
		require.EqualValues(t, 200, res.Inserted)
		require.Equal(t, []campaigns.RowProblem{
			{Row: 202, Field: "name", Reason: "is not valid UTF-8 text"},
			{Row: 203, Field: "company", Reason: "is not valid UTF-8 text"},
			{Row: 204, Field: "owner_email", Reason: "is not valid UTF-8 text"},
		}, res.Problems)
	})
}

func TestFreshImportRejectsARowTheDatabaseRefuses(t *testing.T) {
	s := campaignstest.Open(t, campaignstest.Postgres)
	s.SetFreshLoadMin(100)
	ctx := context.Background()
	// A rule only the database knows: its refusal comes from inside a batch's
	// COPY, which the load's savepoint undoes before the rows go in one by one.
	require.NoError(t, s.DB().Exec(`ALTER TABLE customers ADD CONSTRAINT no_zed CHECK (name NOT LIKE 'Zed%')`).Error)
	csv := strings.Replace(freshCSV(12000), "F500,Person 500,", "F500,Zed 500,", 1)
	res, err := s.ImportCustomers(ctx, strings.NewReader(csv), campaigns.ImportOptions{Actor: "t", Size: int64(len(csv))})
	require.NoError(t, err)
	require.EqualValues(t, 1, s.FreshLoads())
	require.EqualValues(t, 11996, res.Inserted)
	require.EqualValues(t, 4, res.Rejected)
	var refused []campaigns.RowProblem
	for _, p := range res.Problems {
		if strings.Contains(p.Reason, "refused") {
			refused = append(refused, p)
		}
	}
	require.Len(t, refused, 1)
	require.Equal(t, 502, refused[0].Row)
	require.Contains(t, refused[0].Reason, "no_zed")
	require.EqualValues(t, 11996, createdRowsMatch(t, s, fmt.Sprintf("import:%d", res.ID)))
}

func TestFreshLoadStepsAsideForWhatDependsOnTheTable(t *testing.T) {
	s := campaignstest.Open(t, campaignstest.Postgres)
	s.SetFreshLoadMin(100)
	ctx := context.Background()
	// Another table's key on customers' email: the unique constraint cannot
	// be dropped, so the load takes the ordinary path instead of failing.
	require.NoError(t, s.DB().Exec(`CREATE TABLE vip (email TEXT REFERENCES customers (email))`).Error)
	before := schemaOf(t, s)
	csv := freshCSV(3000)
	res, err := s.ImportCustomers(ctx, strings.NewReader(csv), campaigns.ImportOptions{Actor: "t", Size: int64(len(csv))})
	require.NoError(t, err)
	require.Zero(t, s.FreshLoads())
	require.EqualValues(t, 2997, res.Inserted)
	require.Equal(t, before, schemaOf(t, s))
}

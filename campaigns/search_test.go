package campaigns_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
)

// searchState reports whether customer_search is marked complete.
func searchState(t *testing.T, s *campaigns.Store) bool {
	t.Helper()
	var complete bool
	require.NoError(t, s.DB().Raw("SELECT complete FROM customer_search_state").Scan(&complete).Error)
	return complete
}

// requireSearchInStep checks that customer_search holds exactly one row per
// customer, with the customer's current name, email and company.
func requireSearchInStep(t *testing.T, s *campaigns.Store) {
	t.Helper()
	var off []string
	require.NoError(t, s.DB().Raw(`SELECT coalesce(c.id, cs.customer_id)::text || ': ' || coalesce(cs.doc, '(none)')
		FROM customers c FULL JOIN customer_search cs ON cs.customer_id = c.id
		WHERE cs.doc IS DISTINCT FROM lower(c.name) || E'\n' || c.email || E'\n' || lower(c.company)`).Scan(&off).Error)
	require.Empty(t, off, "customers whose search row is missing, stale or left over")
}

// searchResults lists every customer a query finds, in order, page by
// page through the cursors, with the first page's total.
func searchResults(t *testing.T, s *campaigns.Store, q campaigns.CustomerQuery) ([]int64, int64) {
	t.Helper()
	q.PerPage = 40
	var ids []int64
	page, err := s.ListCustomers(context.Background(), q)
	require.NoError(t, err, "%+v", q)
	total := page.Total
	for {
		for _, c := range page.Items {
			ids = append(ids, c.ID)
		}
		if page.NextCursor == "" {
			return ids, total
		}
		q.After = page.NextCursor
		page, err = s.ListCustomers(context.Background(), q)
		require.NoError(t, err, "%+v", q)
	}
}

// searchQueries are searches to ask both ways: common and rare terms,
// LIKE's own characters, short terms, case, spaces, a newline, and a
// search beside other filters.
func searchQueries() []campaigns.CustomerQuery {
	var qs []campaigns.CustomerQuery
	for _, term := range []string{"son", "li", "oak", "Café", "1@", "example", "zz9", "%", "_", `\`, "a_b",
		"LIAM", "  hernandez ", "hernandez\nliam", "renamed", "new co"} {
		qs = append(qs, campaigns.CustomerQuery{Q: term}, campaigns.CustomerQuery{Q: term, Sort: "-spend"})
	}
	min := int64(300_000)
	return append(qs, campaigns.CustomerQuery{Q: "son", Metros: []string{"Chicago"}, MinSpendCents: &min},
		campaigns.CustomerQuery{Q: "ol", Levels: []campaigns.Level{2, 3}, Sort: "metro"})
}

// requireSearchesAgree asks every search through customer_search and by
// reading customers, and requires the same customers, order and totals.
func requireSearchesAgree(t *testing.T, s *campaigns.Store) {
	t.Helper()
	require.True(t, searchState(t, s))
	type answer struct {
		ids   []int64
		total int64
	}
	// The first pass reads customer_search: a word only its copy of one
	// customer holds is found through it, and not by reading customers.
	var someone int64
	require.NoError(t, s.DB().Raw("SELECT min(customer_id) FROM customer_search").Scan(&someone).Error)
	require.NoError(t, s.DB().Exec(`UPDATE customer_search SET doc = doc || 'zqsentinel' WHERE customer_id = ?`, someone).Error)
	ids, _ := searchResults(t, s, campaigns.CustomerQuery{Q: "zqsentinel"})
	require.Equal(t, []int64{someone}, ids)
	require.NoError(t, s.DB().Exec(`UPDATE customer_search SET doc = replace(doc, 'zqsentinel', '') WHERE customer_id = ?`, someone).Error)
	var through []answer
	for _, q := range searchQueries() {
		ids, total := searchResults(t, s, q)
		require.EqualValues(t, len(ids), total, "%+v", q)
		through = append(through, answer{ids, total})
	}
	require.NoError(t, s.DB().Exec("UPDATE customer_search_state SET complete = false").Error)
	defer func() { require.NoError(t, s.DB().Exec("UPDATE customer_search_state SET complete = true").Error) }()
	found := 0
	for i, q := range searchQueries() {
		ids, total := searchResults(t, s, q)
		require.Equal(t, answer{ids, total}, through[i], "%+v", q)
		found += len(ids)
	}
	require.NotZero(t, found)
}

func TestCustomerSearchTableFollowsCustomers(t *testing.T) {
	s := campaignstest.Open(t, campaignstest.Postgres)
	ctx := context.Background()
	require.True(t, searchState(t, s), "a new database starts complete")
	_, err := s.Seed(ctx, campaigns.SeedOptions{Customers: 600, Metros: 3, Seed: 11, Actor: "t", Tag: "search"})
	require.NoError(t, err)
	require.Zero(t, s.FreshLoads(), "small enough for the ordinary path, which the triggers follow")
	meta := campaigns.UpsertMeta{Actor: "t", Source: "api", Rule: campaigns.RuleAPI}
	co := "Acme_Widgets 100%"
	r, err := s.UpsertCustomer(ctx, campaigns.CustomerInput{ExternalID: "S1", Name: "Olivia Renamed", Email: "o.r@example.com", Company: &co}, meta)
	require.NoError(t, err)
	requireSearchInStep(t, s)

	// A new name, email and company are searchable at once.
	co = "New Co"
	_, err = s.UpsertCustomer(ctx, campaigns.CustomerInput{ExternalID: "S1", Name: "Olivia Twice", Email: "o.t@example.com", Company: &co}, meta)
	require.NoError(t, err)
	requireSearchInStep(t, s)
	page, err := s.ListCustomers(ctx, campaigns.CustomerQuery{Q: "new co"})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	require.Equal(t, r.Customer.ID, page.Items[0].ID)

	// A level credit, or anything else, does not touch the search row.
	var before, after string
	rowVersion := `SELECT xmin::text FROM customer_search WHERE customer_id = ?`
	require.NoError(t, s.DB().Raw(rowVersion, r.Customer.ID).Scan(&before).Error)
	require.NoError(t, s.DB().Exec("UPDATE customers SET level = 5, name = name, updated_at = now() WHERE id = ?", r.Customer.ID).Error)
	require.NoError(t, s.DB().Raw(rowVersion, r.Customer.ID).Scan(&after).Error)
	require.Equal(t, before, after)

	requireSearchesAgree(t, s)

	// A customer's row goes with the customer.
	require.NoError(t, s.DB().Exec("DELETE FROM customers WHERE id = ?", r.Customer.ID).Error)
	requireSearchInStep(t, s)
}

func TestFreshLoadLeavesCustomerSearchToTheFill(t *testing.T) {
	s := campaignstest.Open(t, campaignstest.Postgres)
	s.SetFreshLoadMin(100)
	ctx := context.Background()
	_, err := s.Seed(ctx, campaigns.SeedOptions{Customers: 3000, Metros: 4, Seed: 5, Actor: "t", Tag: "fill"})
	require.NoError(t, err)
	require.EqualValues(t, 1, s.FreshLoads())
	require.False(t, searchState(t, s), "the load left customer_search to the fill")
	var enabled string
	require.NoError(t, s.DB().Raw(`SELECT tgenabled FROM pg_trigger WHERE tgrelid = 'customers'::regclass
		AND tgname = 'customer_search_insert'`).Scan(&enabled).Error)
	require.Equal(t, "O", enabled, "the load put the trigger back")

	// Until the fill, searches read customers, and the triggers go on.
	meta := campaigns.UpsertMeta{Actor: "t", Source: "api", Rule: campaigns.RuleAPI}
	co := "New Co"
	_, err = s.UpsertCustomer(ctx, campaigns.CustomerInput{ExternalID: "S2", Name: "Renamed Before Fill", Email: "rbf@example.com", Company: &co}, meta)
	require.NoError(t, err)
	page, err := s.ListCustomers(ctx, campaigns.CustomerQuery{Q: "son"})
	require.NoError(t, err)
	require.NotZero(t, page.Total)
	var rows int64
	require.NoError(t, s.DB().Raw("SELECT count(*) FROM customer_search").Scan(&rows).Error)
	require.EqualValues(t, 1, rows)

	filled, err := s.FillCustomerSearch(ctx)
	require.NoError(t, err)
	require.True(t, filled)
	require.True(t, searchState(t, s))
	requireSearchInStep(t, s)
	requireTrigramIndex(t, s)
	filled, err = s.FillCustomerSearch(ctx)
	require.NoError(t, err)
	require.False(t, filled, "complete: nothing to do")

	requireSearchesAgree(t, s)
}

// A fill cut short, or one that finds rows the triggers wrote, finishes
// the table without overwriting them.
func TestCustomerSearchFillIsIdempotent(t *testing.T) {
	s := campaignstest.Open(t, campaignstest.Postgres)
	ctx := context.Background()
	_, err := s.Seed(ctx, campaigns.SeedOptions{Customers: 500, Metros: 2, Seed: 9, Actor: "t", Tag: "again"})
	require.NoError(t, err)
	// Half the rows lost, one left from a name since changed (the trigger
	// wrote it after the fill's snapshot), the index left invalid.
	require.NoError(t, s.DB().Exec(`UPDATE customer_search_state SET complete = false;
		DELETE FROM customer_search WHERE customer_id % 2 = 0;
		UPDATE customers SET name = 'Changed Meanwhile' WHERE id = (SELECT min(customer_id) FROM customer_search);
		UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'customer_search_trgm_idx'::regclass`).Error)
	filled, err := s.FillCustomerSearch(ctx)
	require.NoError(t, err)
	require.True(t, filled)
	requireSearchInStep(t, s)
	page, err := s.ListCustomers(ctx, campaigns.CustomerQuery{Q: "changed meanwhile"})
	require.NoError(t, err)
	require.EqualValues(t, 1, page.Total)
	requireTrigramIndex(t, s)

	// pg_trgm installed after the table was filled: complete, but no
	// index. The next call builds it, and only it.
	require.NoError(t, s.DB().Exec("DROP INDEX customer_search_trgm_idx").Error)
	var before string
	require.NoError(t, s.DB().Raw("SELECT max(xmin::text::bigint)::text FROM customer_search").Scan(&before).Error)
	filled, err = s.FillCustomerSearch(ctx)
	require.NoError(t, err)
	require.True(t, filled)
	requireTrigramIndex(t, s)
	var after string
	require.NoError(t, s.DB().Raw("SELECT max(xmin::text::bigint)::text FROM customer_search").Scan(&after).Error)
	require.Equal(t, before, after, "no row written again")
	filled, err = s.FillCustomerSearch(ctx)
	require.NoError(t, err)
	require.False(t, filled)
}

func requireTrigramIndex(t *testing.T, s *campaigns.Store) {
	t.Helper()
	var valid bool
	require.NoError(t, s.DB().Raw(`SELECT indisvalid FROM pg_index WHERE indexrelid = 'customer_search_trgm_idx'::regclass`).Scan(&valid).Error)
	require.True(t, valid)
}

func TestCustomerSearchOnSQLiteNeedsNoFill(t *testing.T) {
	s := campaignstest.Open(t, campaignstest.SQLite)
	filled, err := s.FillCustomerSearch(context.Background())
	require.NoError(t, err)
	require.False(t, filled)
}

// On PostgreSQL a rare search can find its customers through the trigram
// index, both when it counts them and when it lists them: without it, at
// a million customers, each read every customer (0.6-1.3 s). At this
// test's 20,000 customers reading the narrow table, or its primary key,
// is cheaper, so the plans are asked for with both priced out: what is
// checked is that the statements can use the index. The bench shows the
// planner choosing it at a million.
func TestRareSearchUsesTheTrigramIndex(t *testing.T) {
	s := seededPostgres(t, 3)
	require.NoError(t, s.DB().Exec("ANALYZE customer_search").Error)
	var mu sync.Mutex
	captured := map[string]string{}
	require.NoError(t, s.DB().Callback().Query().After("gorm:query").Register("test:capture-search", func(db *gorm.DB) {
		q := db.Statement.SQL.String()
		if strings.Contains(q, "customer_search") {
			mu.Lock()
			key := "list"
			if strings.Contains(q, "count(*)") {
				key = "count"
			}
			captured[key] = db.Dialector.Explain(q, db.Statement.Vars...)
			mu.Unlock()
		}
	}))
	for _, term := range []string{"zz9", "olivia.garcia.1"} {
		_, err := s.ListCustomers(context.Background(), campaigns.CustomerQuery{Q: term})
		require.NoError(t, err)
		for _, key := range []string{"count", "list"} {
			mu.Lock()
			q := captured[key]
			delete(captured, key)
			mu.Unlock()
			if term == "zz9" && key == "list" {
				require.Empty(t, q, "nobody matches: no list query")
				continue
			}
			require.NotEmpty(t, q, "%s %s", term, key)
			var plan []string
			require.NoError(t, s.DB().Transaction(func(tx *gorm.DB) error {
				if err := tx.Exec("SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off").Error; err != nil {
					return err
				}
				return tx.Raw("EXPLAIN " + q).Scan(&plan).Error
			}))
			text := strings.Join(plan, "\n")
			require.Contains(t, text, "customer_search_trgm_idx", "%s %s:\n%s", term, key, text)
			require.NotContains(t, text, "Seq Scan", "%s %s:\n%s", term, key, text)
		}
	}
}

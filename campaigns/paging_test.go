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

// Walking a list by cursors, forwards and back, in every sort order, gives
// exactly the rows the numbered pages give: none skipped, none twice, even
// where many customers share a sort key.
func TestKeysetPagingMatchesNumberedPages(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		_, err := s.Seed(ctx, campaigns.SeedOptions{Customers: 230, Metros: 3, Seed: 11})
		require.NoError(t, err)
		ids := func(cs []campaigns.Customer) []int64 {
			out := make([]int64, len(cs))
			for i := range cs {
				out[i] = cs[i].ID
			}
			return out
		}
		for _, sort := range []string{"name", "-name", "spend", "-spend", "level", "-level", "metro", "-metro", "updated", "-updated"} {
			base := campaigns.CustomerQuery{Sort: sort, PerPage: 25, Metros: []string{"Chicago", "Evanston"}}
			var want []int64
			for p := 1; ; p++ {
				q := base
				q.Page = p
				page, err := s.ListCustomers(ctx, q)
				require.NoError(t, err)
				want = append(want, ids(page.Items)...)
				if page.NextPage == nil {
					require.EqualValues(t, page.Total, len(want))
					break
				}
			}
			require.Greater(t, len(want), 50, "several pages")

			got, pages := walkForward(t, s, base)
			require.Equal(t, want, got, "forwards, sorted by %s", sort)

			// And back from the last page by its PrevCursor.
			for i := len(pages) - 1; i > 0; i-- {
				q := base
				q.Before, q.Page = pages[i].PrevCursor, pages[i].Page-1
				require.NotEmpty(t, q.Before, "page %d links back", pages[i].Page)
				page, err := s.ListCustomers(ctx, q)
				require.NoError(t, err)
				require.Equal(t, ids(pages[i-1].Items), ids(page.Items), "backwards to page %d, sorted by %s", i, sort)
			}
			require.Empty(t, pages[0].PrevCursor, "the first page has nothing before it")
		}

		_, err = s.ListCustomers(ctx, campaigns.CustomerQuery{Sort: "name", After: "bm90IGEgY3Vyc29y"})
		require.Equal(t, campaigns.EINVALID, campaigns.ErrorCode(err))
		first, err := s.ListCustomers(ctx, campaigns.CustomerQuery{Sort: "spend", PerPage: 10})
		require.NoError(t, err)
		_, err = s.ListCustomers(ctx, campaigns.CustomerQuery{Sort: "name", After: first.NextCursor})
		require.Equal(t, campaigns.EINVALID, campaigns.ErrorCode(err), "a cursor from another order is refused")
	})
}

// walkForward lists base page by page through each page's next cursor,
// from the first page to the last; it returns the ids in order and the
// pages.
func walkForward(t *testing.T, s *campaigns.Store, base campaigns.CustomerQuery) ([]int64, []campaigns.CustomerPage) {
	t.Helper()
	var got []int64
	var pages []campaigns.CustomerPage
	q := base
	for {
		page, err := s.ListCustomers(context.Background(), q)
		require.NoError(t, err)
		for _, c := range page.Items {
			got = append(got, c.ID)
		}
		pages = append(pages, page)
		if page.NextCursor == "" {
			return got, pages
		}
		q = base
		q.After, q.Page = page.NextCursor, page.Page+1
	}
}

// seededPostgres is a PostgreSQL store with 20,000 seeded customers and
// fresh planner statistics, for tests that read query plans.
func seededPostgres(t *testing.T, seed uint64) *campaigns.Store {
	t.Helper()
	if len(campaignstest.Available(t)) < 2 {
		t.Skip("needs PostgreSQL")
	}
	s := campaignstest.Open(t, campaignstest.Postgres)
	_, err := s.Seed(context.Background(), campaigns.SeedOptions{Customers: 20000, Metros: 8, Seed: seed})
	require.NoError(t, err)
	require.NoError(t, s.DB().Exec("VACUUM ANALYZE customers").Error)
	return s
}

// On PostgreSQL every sort of the customer list reads its next page from
// an index (migration 00014), not by sorting every customer: without one,
// a page sorted by spend took 0.8 s at a million customers.
func TestEverySortPagesThroughAnIndexOnPostgres(t *testing.T) {
	s := seededPostgres(t, 5)
	ctx := context.Background()
	// The list's own statement, as ListCustomers sends it.
	var mu sync.Mutex
	var listSQL string
	require.NoError(t, s.DB().Callback().Query().After("gorm:query").Register("test:capture", func(db *gorm.DB) {
		if db.Statement.Table == "customers" && strings.Contains(db.Statement.SQL.String(), "ORDER BY") {
			mu.Lock()
			listSQL = db.Dialector.Explain(db.Statement.SQL.String(), db.Statement.Vars...)
			mu.Unlock()
		}
	}))
	for _, sort := range []string{"name", "-name", "spend", "-spend", "level", "-level", "metro", "-metro", "updated", "-updated"} {
		first, err := s.ListCustomers(ctx, campaigns.CustomerQuery{Sort: sort})
		require.NoError(t, err)
		require.NotEmpty(t, first.NextCursor, sort)
		_, err = s.ListCustomers(ctx, campaigns.CustomerQuery{Sort: sort, After: first.NextCursor, Page: 2})
		require.NoError(t, err)
		mu.Lock()
		q := listSQL
		mu.Unlock()
		require.Contains(t, q, "ORDER BY", sort)
		var plan []string
		require.NoError(t, s.DB().Raw("EXPLAIN "+q).Scan(&plan).Error)
		text := strings.Join(plan, "\n")
		require.Contains(t, text, "Index Scan", "%s:\n%s", sort, text)
		require.NotContains(t, text, "Seq Scan on customers", "%s:\n%s", sort, text)
		require.NotContains(t, text, "Sort Key", "%s:\n%s", sort, text)
	}
}

// A search that few customers match is listed, in every sort and by
// cursor both ways, as the whole list sorted the same way and filtered:
// on PostgreSQL such a search reads the table instead of walking the
// sort's index (ListCustomers), which must not change what it shows.
// One that matches nobody is an empty page.
func TestRareSearchListsLikeTheFilteredList(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		_, err := s.Seed(ctx, campaigns.SeedOptions{Customers: 400, Metros: 3, Seed: 17})
		require.NoError(t, err)
		all, err := s.ListCustomers(ctx, campaigns.CustomerQuery{Sort: "name", PerPage: 500})
		require.NoError(t, err)
		require.Len(t, all.Items, 400)
		// A company or name that a few customers share: a rare search.
		matches := func(c campaigns.Customer, term string) bool {
			return strings.Contains(strings.ToLower(c.Name)+"\n"+c.Email+"\n"+strings.ToLower(c.Company), term)
		}
		term := ""
		for i := 0; i < len(all.Items) && term == ""; i++ {
			word := strings.ToLower(all.Items[i].Company)
			if i%2 == 0 {
				word = strings.ToLower(all.Items[i].Name)
			}
			n := 0
			for _, d := range all.Items {
				if matches(d, word) {
					n++
				}
			}
			if n >= 3 && n <= 12 {
				term = word
			}
		}
		require.NotEmpty(t, term, "a company or name that 3-12 customers share")
		for _, sort := range []string{"name", "-name", "spend", "-spend", "level", "-level", "metro", "-metro", "updated", "-updated"} {
			whole, err := s.ListCustomers(ctx, campaigns.CustomerQuery{Sort: sort, PerPage: 500})
			require.NoError(t, err)
			var want []int64
			for _, c := range whole.Items {
				if matches(c, term) {
					want = append(want, c.ID)
				}
			}
			base := campaigns.CustomerQuery{Sort: sort, PerPage: 2, Q: strings.ToUpper(term)}
			got, pages := walkForward(t, s, base)
			for _, page := range pages {
				require.EqualValues(t, len(want), page.Total)
			}
			require.Equal(t, want, got, "%q sorted by %s", term, sort)
			last := pages[len(pages)-1]
			q := base
			q.Before, q.Page = last.PrevCursor, last.Page-1
			back, err := s.ListCustomers(ctx, q)
			require.NoError(t, err)
			require.Equal(t, pages[len(pages)-2].Items, back.Items, "back from the last page, sorted by %s", sort)
		}
		none, err := s.ListCustomers(ctx, campaigns.CustomerQuery{Q: "no such customer anywhere"})
		require.NoError(t, err)
		require.Zero(t, none.Total)
		require.NotNil(t, none.Items)
		require.Empty(t, none.Items)
	})
}

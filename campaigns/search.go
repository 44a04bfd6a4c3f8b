package campaigns

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/rapport/rapport/config"
)

// Customer search on PostgreSQL ("contains", in name, email or company)
// goes through a pg_trgm index over the three joined by newlines, which a
// search term never holds, so a match never spans two of them. Without
// the index every search read the whole table: 0.6-1.3 s at a million
// customers, 5.3 s before ListCustomers learned to read it only once.
// Migration 00016 builds it where pg_trgm can be installed; where it
// cannot, search still works, reading the table.

// searchIndex is the index's name; bulk loads drop it with the others but
// leave it to EnsureSearchIndex: a GIN build is one core's work for 28 s
// at a million customers, twice a whole load.
const searchIndex = "customers_search_idx"

// searchDoc is the indexed expression; a query must spell it the same.
const searchDoc = `(lower(name) || E'\n' || email || E'\n' || lower(company))`

// searchLockKey is the advisory lock a process holds while it builds the
// index, so that two workers do not both build it.
const searchLockKey = 0x72617070_73726368 // "rappsrch"

// searchWhere is the search condition for term (lower-cased, trimmed) and
// its arguments. Terms shorter than three characters have no trigram to
// look up, so they, and SQLite, ask each column.
func (s *Store) searchWhere(term string) (string, []any) {
	like := "%" + escapeLike(term) + "%"
	if s.dialect == config.Postgres && len([]rune(term)) >= 3 && !strings.Contains(term, "\n") {
		return searchDoc + ` LIKE ? ESCAPE '\'`, []any{like}
	}
	return `(lower(name) LIKE ? ESCAPE '\' OR email LIKE ? ESCAPE '\' OR lower(company) LIKE ? ESCAPE '\')`, []any{like, like, like}
}

// EnsureSearchIndex builds the search index if it is missing or a build
// of it was cut short, without blocking writes (CREATE INDEX
// CONCURRENTLY). It reports whether it built one. It does nothing on
// SQLite, without pg_trgm, or while another process is building it. The
// worker runs it every minute and at start.
func (s *Store) EnsureSearchIndex(ctx context.Context) (bool, error) {
	if s.dialect != config.Postgres {
		return false, nil
	}
	built := false
	err := s.withPgConn(ctx, func(c *pgx.Conn) error {
		var trgm *string
		var valid *bool
		if err := c.QueryRow(ctx, `SELECT (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'),
			(SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1))`, searchIndex).Scan(&trgm, &valid); err != nil {
			return err
		}
		if trgm == nil || (valid != nil && *valid) {
			return nil
		}
		var locked bool
		if err := c.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", int64(searchLockKey)).Scan(&locked); err != nil || !locked {
			return err
		}
		defer func() {
			_, _ = c.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(searchLockKey))
		}()
		// Under the lock, again: another process may have finished it.
		if err := c.QueryRow(ctx, "SELECT (SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1))", searchIndex).Scan(&valid); err != nil {
			return err
		}
		if valid != nil && *valid {
			return nil
		}
		if valid != nil { // an interrupted concurrent build leaves an invalid index
			if _, err := c.Exec(ctx, "DROP INDEX CONCURRENTLY IF EXISTS "+searchIndex); err != nil {
				return err
			}
		}
		if _, err := c.Exec(ctx, fmt.Sprintf("CREATE INDEX CONCURRENTLY %s ON customers USING gin (%s %s.gin_trgm_ops)",
			searchIndex, searchDoc, pgx.Identifier{*trgm}.Sanitize())); err != nil {
			return fmt.Errorf("build the customer search index: %w", err)
		}
		built = true
		// The planner knows how many customers a term matches only from
		// statistics on the indexed expression, which ANALYZE gathers; with
		// none it guessed few, and read the index for a term all match
		// ("example.com": 4.2-5.0 s instead of 0.7).
		_, err := c.Exec(ctx, "ANALYZE customers")
		return err
	})
	return built, err
}

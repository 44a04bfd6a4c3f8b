package campaigns

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"github.com/rapport/rapport/config"
)

// Customer search on PostgreSQL ("contains", in name, email or company)
// reads customer_search (migration 00016): one narrow row per customer
// with the three fields as a search compares them, under a pg_trgm index.
// Reading customers whole took 0.6-1.3 s at a million customers. Triggers
// keep the table in step; a bulk load into an empty table drops the insert one
// and marks it incomplete, and FillCustomerSearch, run by the scheduler,
// fills it again. Until then searches read customers, as before. SQLite
// has its own trigram index (migration 00008).

// searchDoc is customer_search.doc, as the migration's triggers spell it.
const searchDoc = `lower(name) || E'\n' || email || E'\n' || lower(company)`

// searchIndex is customer_search's trigram index. FillCustomerSearch
// drops it while it fills the table and builds it after.
const searchIndex = "customer_search_trgm_idx"

// searchLock is the advisory lock held by whoever fills customer_search,
// and by a bulk load that leaves it incomplete: "rapp" and the table's
// oid, so that schemas sharing a database (tests do) do not share it.
const searchLock = `(x'72617070'::bigint << 32) | 'customer_search'::regclass::oid::bigint`

// searchFillBatch is how many customers one statement of a fill copies;
// each batch commits, so a trigger waiting on one of its rows waits for a
// batch, not for the whole fill.
const searchFillBatch = 5_000

// searchReady reports whether customer_search holds every customer.
func (s *Store) searchReady(db *gorm.DB) (bool, error) {
	if s.dialect != config.Postgres {
		return false, nil
	}
	var ready bool
	err := db.Raw("SELECT complete FROM customer_search_state").Scan(&ready).Error
	return ready, err
}

// CustomerSearchFilled reports whether customer search is ready to use
// its index: false on PostgreSQL from a bulk load until the scheduler has
// filled customer_search.
func (s *Store) CustomerSearchFilled(ctx context.Context) (bool, error) {
	if s.dialect != config.Postgres {
		return true, nil
	}
	return s.searchReady(s.db.WithContext(ctx))
}

// searchWhere is the condition for a search for term (lower-cased and
// trimmed) and its arguments, and whether it reads customer_search: it
// does when the table is complete and the term holds no newline, which
// could match across two fields of a doc; else it asks the three columns.
func searchWhere(term string, ready bool) (string, []any, bool) {
	like := "%" + escapeLike(term) + "%"
	if ready && !strings.Contains(term, "\n") {
		return `id IN (SELECT customer_id FROM customer_search WHERE doc LIKE ? ESCAPE '\')`, []any{like}, true
	}
	return `(lower(name) LIKE ? ESCAPE '\' OR email LIKE ? ESCAPE '\' OR lower(company) LIKE ? ESCAPE '\')`, []any{like, like, like}, false
}

// searchStatus is what FillCustomerSearch has to do: fill the table,
// build its index (pg_trgm installed, the index missing or left invalid
// by an interrupted build), both or neither.
type searchStatus struct {
	Complete bool
	Trgm     *string // pg_trgm's schema, if installed
	Valid    *bool   // the index's indisvalid, if it exists
}

func (st searchStatus) needsIndex() bool { return st.Trgm != nil && (st.Valid == nil || !*st.Valid) }

const searchStatusSQL = `SELECT (SELECT complete FROM customer_search_state),
	(SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'),
	(SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('` + searchIndex + `'))`

// FillCustomerSearch fills customer_search after a bulk load (or the
// migration that made it) left it incomplete, builds its trigram index
// without blocking writes, and marks it complete; it also builds the index
// alone where pg_trgm was installed after the table was filled. It reports
// whether it did anything. It does nothing on SQLite, when there is
// nothing to do, or while another process holds the lock; cut short, it
// starts again on the next call. The scheduler calls it at start and every
// minute.
func (s *Store) FillCustomerSearch(ctx context.Context) (bool, error) {
	if s.dialect != config.Postgres {
		return false, nil
	}
	var st searchStatus
	if err := s.db.WithContext(ctx).Raw(searchStatusSQL).Row().Scan(&st.Complete, &st.Trgm, &st.Valid); err != nil {
		return false, err
	}
	if st.Complete && !st.needsIndex() {
		return false, nil
	}
	did := false
	err := s.withPgConn(ctx, func(c *pgx.Conn) (err error) {
		var locked bool
		if err := c.QueryRow(ctx, "SELECT pg_try_advisory_lock("+searchLock+")").Scan(&locked); err != nil || !locked {
			return err
		}
		defer func() {
			// A connection still holding the lock must not go back to the
			// pool: no fill or fresh load would run again.
			if _, uerr := c.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock("+searchLock+")"); uerr != nil {
				err = errors.Join(err, uerr, driver.ErrBadConn)
			}
		}()
		// Under the lock, again: another process may have just finished.
		if err := c.QueryRow(ctx, searchStatusSQL).Scan(&st.Complete, &st.Trgm, &st.Valid); err != nil {
			return err
		}
		if st.Complete && !st.needsIndex() {
			return nil
		}
		// Each step below that waits for a lock gives way to the
		// application after 100 ms (SET LOCAL, so nothing outlives its
		// transaction): while DROP INDEX waits, every search and trigger
		// queues behind it; and a transaction whose trigger waits on one
		// of a batch's rows while the batch waits on another of its rows
		// would deadlock, and PostgreSQL might abort the application's
		// side. Timed out, the fill starts again on the next call.
		step := func(dest []any, sql string, args ...any) error {
			return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '100ms'"); err != nil {
					return err
				}
				if dest == nil {
					_, err := tx.Exec(ctx, sql, args...)
					return err
				}
				return tx.QueryRow(ctx, sql, args...).Scan(dest...)
			})
		}
		if !st.Complete || st.Valid != nil {
			// Keeping a GIN index up to date row by row is several times
			// the cost of building it once (1M customers: the fill takes
			// about 7 s without it, the build 15 s); an invalid one is
			// what an interrupted build leaves.
			if err := step(nil, "DROP INDEX IF EXISTS "+searchIndex); err != nil {
				return err
			}
		}
		if !st.Complete {
			// Customers the triggers wrote meanwhile keep their row (a name
			// changed after this batch's snapshot is newer than the
			// batch's). FOR KEY SHARE skips customers deleted since, whose
			// rows the foreign key would refuse, and holds back their
			// deletion, and other row locks on them, until the batch
			// commits: a few milliseconds.
			var last int64
			for {
				var next *int64
				if err := step([]any{&next}, `WITH batch AS (
						SELECT id, `+searchDoc+` AS doc FROM customers WHERE id > $1 ORDER BY id LIMIT $2 FOR KEY SHARE
					), ins AS (
						INSERT INTO customer_search (customer_id, doc) SELECT id, doc FROM batch ON CONFLICT (customer_id) DO NOTHING
					)
					SELECT max(id) FROM batch`, last, searchFillBatch); err != nil {
					return fmt.Errorf("fill customer search: %w", err)
				}
				if next == nil {
					break
				}
				last = *next
			}
		}
		if st.Trgm != nil {
			if _, err := c.Exec(ctx, fmt.Sprintf("CREATE INDEX CONCURRENTLY %s ON customer_search USING gin (doc %s.gin_trgm_ops)",
				searchIndex, pgx.Identifier{*st.Trgm}.Sanitize())); err != nil {
				return fmt.Errorf("build the customer search index: %w", err)
			}
		}
		// The planner knows how many customers a term matches only from
		// statistics on doc.
		if _, err := c.Exec(ctx, "ANALYZE customer_search"); err != nil {
			return err
		}
		if _, err := c.Exec(ctx, "UPDATE customer_search_state SET complete = true"); err != nil {
			return err
		}
		did = true
		return nil
	})
	return did, err
}

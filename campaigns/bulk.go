package campaigns

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"

	"github.com/rapport/rapport/config"
)

// Bulk inserts for imports and seeding. On PostgreSQL a batch goes in as
// one INSERT … SELECT FROM unnest(arrays): one array parameter per column whatever
// the batch size, planned once, with no per-row reflection. With two
// batches in flight (ImportCustomers, Seed) a 200k-row import went from
// 9,900 to 34,000 rows/s (docs/performance.md).
// SQLite keeps GORM's multi-row INSERT, which is already one statement.

// pgArray passes a Go slice to PostgreSQL as one array parameter; GORM
// would otherwise expand a slice into a list of parameters.
type pgArray struct{ v any }

func (a pgArray) Value() (driver.Value, error) { return a.v, nil }

// insertCustomers inserts new customers and sets their IDs.
func insertCustomers(tx *gorm.DB, cs []*Customer) error {
	if len(cs) == 0 {
		return nil
	}
	if tx.Dialector.Name() != "postgres" {
		return tx.Omit("Owner").CreateInBatches(cs, 1000).Error
	}
	n := len(cs)
	var (
		ext, owner                    = make([]*string, n), make([]*int64, n)
		name, email, company, metro   = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		metroKey, phone, consent, why = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		spend                         = make([]int64, n)
		level                         = make([]int16, n)
		consentAt                     = make([]*time.Time, n)
		createdAt, updatedAt          = make([]time.Time, n), make([]time.Time, n)
		byEmail                       = make(map[string]*Customer, n)
	)
	for i, c := range cs {
		ext[i], owner[i], name[i], email[i], company[i], metro[i] = c.ExternalID, c.OwnerID, c.Name, c.Email, c.Company, c.MetroArea
		metroKey[i], phone[i], consent[i], why[i] = c.MetroKey, c.Phone, string(c.ConsentState), c.ConsentReason
		spend[i], level[i], consentAt[i] = c.AnnualSpendCents, int16(c.Level), c.ConsentChangedAt
		createdAt[i], updatedAt[i] = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
		byEmail[c.Email] = c
	}
	rows, err := tx.Raw(`INSERT INTO customers (external_id, name, email, company, metro_area, metro_key, annual_spend_cents,
		level, owner_id, phone, consent_state, consent_changed_at, consent_reason, created_at, updated_at)
		SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[],
			?::smallint[], ?::bigint[], ?::text[], ?::text[], ?::timestamptz[], ?::text[], ?::timestamptz[], ?::timestamptz[])
		RETURNING id, email`,
		pgArray{ext}, pgArray{name}, pgArray{email}, pgArray{company}, pgArray{metro}, pgArray{metroKey}, pgArray{spend},
		pgArray{level}, pgArray{owner}, pgArray{phone}, pgArray{consent}, pgArray{consentAt}, pgArray{why},
		pgArray{createdAt}, pgArray{updatedAt}).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	got := 0
	for rows.Next() {
		var id int64
		var e string
		if err := rows.Scan(&id, &e); err != nil {
			return err
		}
		// Matched by email (unique), since RETURNING promises no order.
		if c := byEmail[e]; c != nil {
			c.ID = id
			got++
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if got != n {
		return fmt.Errorf("inserted %d customers, expected %d", got, n)
	}
	return nil
}

// insertLedger appends ledger rows in one statement.
func insertLedger(tx *gorm.DB, rows []LedgerEntry) error {
	if len(rows) == 0 {
		return nil
	}
	if tx.Dialector.Name() != "postgres" {
		return tx.CreateInBatches(rows, 2000).Error
	}
	_, err := tx.Statement.ConnPool.ExecContext(tx.Statement.Context, ledgerInsertSQL, ledgerArrays(rows)...)
	return err
}

// ledgerInsertSQL appends ledger rows given as arrays (ledgerArrays), on
// PostgreSQL.
const ledgerInsertSQL = `INSERT INTO level_ledger (customer_id, from_level, to_level, rule, source, credit_key, actor, note, created_at)
	SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::smallint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[])`

func ledgerArrays(rows []LedgerEntry) []any {
	n := len(rows)
	cust := make([]int64, n)
	from, to := make([]int16, n), make([]int16, n)
	rule, source, actor, note := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	key := make([]*string, n)
	at := make([]time.Time, n)
	for i, r := range rows {
		cust[i], from[i], to[i], rule[i], source[i] = r.CustomerID, int16(r.FromLevel), int16(r.ToLevel), r.Rule, r.Source
		key[i], actor[i], note[i], at[i] = r.CreditKey, r.Actor, r.Note, r.CreatedAt.UTC()
	}
	return []any{cust, from, to, rule, source, key, actor, note, at}
}

// idsIn is "column IN (ids)" for a batch: on PostgreSQL one array
// parameter (= ANY), planned once, instead of a thousand parameters bound
// and planned per statement.
func idsIn(tx *gorm.DB, column string, ids []int64) (string, any) {
	if tx.Dialector.Name() == "postgres" {
		return column + " = ANY(?)", pgArray{ids}
	}
	return column + " IN ?", ids
}

// insertLinkSets writes a claim's link sets in one statement and sets
// their IDs.
func insertLinkSets(tx *gorm.DB, sets []LinkSet) error {
	if len(sets) == 0 {
		return nil
	}
	if tx.Dialector.Name() != "postgres" {
		return tx.CreateInBatches(sets, 500).Error
	}
	n := len(sets)
	inv := make([]int64, n)
	rsvp, unsub, checkin, survey := make([][]byte, n), make([][]byte, n), make([][]byte, n), make([][]byte, n)
	for i, l := range sets {
		inv[i], rsvp[i], unsub[i], checkin[i], survey[i] = l.InvitationID, l.RSVPHash, l.UnsubscribeHash, l.CheckinHash, l.SurveyHash
	}
	// The ids are drawn as the rows go in, in the order given (ORDER BY n),
	// and one session's draws only increase: sorted, they follow the input.
	var ids []int64
	err := tx.Raw(`WITH ins AS (INSERT INTO link_sets (invitation_id, rsvp_hash, unsubscribe_hash, checkin_hash, survey_hash, created_at)
			SELECT inv, r, u, c, s, ? FROM unnest(?::bigint[], ?::bytea[], ?::bytea[], ?::bytea[], ?::bytea[]) WITH ORDINALITY AS t(inv, r, u, c, s, n)
			ORDER BY n RETURNING id)
		SELECT id FROM ins ORDER BY id`,
		sets[0].CreatedAt.UTC(), pgArray{inv}, pgArray{rsvp}, pgArray{unsub}, pgArray{checkin}, pgArray{survey}).Scan(&ids).Error
	if err != nil {
		return err
	}
	if len(ids) != n {
		return fmt.Errorf("inserted %d link sets, expected %d", len(ids), n)
	}
	for i := range sets {
		sets[i].ID = ids[i]
	}
	return nil
}

// A fresh load is a large seed or import into an empty customers table on
// PostgreSQL. Keeping indexes up to date row by row was most of such a
// load's time: in one hour on the bench machine, \copy of 1M customers took
// 64 s with all eight indexes and 8.6 s with the primary key alone, and
// building the other seven afterwards took 12.8 s (sorted, with parallel
// workers). Each customer's "created" ledger row cost more again, checking
// its foreign key row by row: 6.2 of 19.4 s for 300k customers. Even a
// primary key, whose inserts are appends, costs more kept than built: in
// psql a million ledger rows went in in 2.8-3.0 s with it, and in 1.0-1.1 s
// without it plus 0.5 s to build it (in a seed's statement log, the insert
// and the build 1.89-2.30 -> 1.72-1.85 s).
//
// So a fresh load runs in one transaction that holds customers and the
// ledger exclusively (a ledger with no customers is empty: its rows go
// with their customer). It drops their unique constraints, secondary
// indexes, the ledger's primary key and its foreign key, copies the
// customers in (COPY, on one connection), writes every "created" ledger
// row with one statement, and builds the keys, indexes and constraints
// again before it commits; the foreign key is then checked by one join.
// Nobody else can read those tables meanwhile, which costs nothing while
// they are empty; a crash or a failure rolls the whole load back, indexes
// and constraints included.
type freshLoad struct {
	conn    *sql.Conn
	rebuild []string  // statements that put the constraints and indexes back
	batches int       // savepoints taken, for their names
	copyBuf []byte    // a batch's COPY data, kept for the next batch
	began   time.Time // for the phases logged at commit
}

// freshLoadRows is the smallest load that takes the fresh path; below it
// the ordinary path is as quick and does not hold the tables.
const freshLoadRows = 50_000

// freshTables are what a fresh load writes, parents first.
var freshTables = []string{"customers", "level_ledger"}

// freshLoadKeeps are partial indexes a fresh load's rows do not enter (its
// ledger rows are each customer's first, from level 0 and from no
// campaign). They stay in place, where a copied row only tests their
// predicate, instead of each being built again by a scan of the table.
var freshLoadKeeps = []string{"level_ledger_campaign_idx", "level_ledger_promotions_idx"}

// beginFreshLoad starts a fresh load, or returns nil when this load cannot
// take that path: not PostgreSQL, too small, customers not empty, or the
// tables busy for over two seconds. The ordinary path is always correct,
// so any failure here only falls back to it.
func (s *Store) beginFreshLoad(ctx context.Context, rows int) *freshLoad {
	if s.dialect != config.Postgres || rows < s.freshLoadMin() {
		return nil
	}
	conn, err := s.sqlDB.Conn(ctx)
	if err != nil {
		return nil
	}
	fl := &freshLoad{conn: conn, began: time.Now()}
	ok, err := fl.prepare(ctx)
	if !ok {
		fl.rollback()
		if err != nil {
			slog.WarnContext(ctx, "bulk load: taking the ordinary path", "reason", err)
		}
		return nil
	}
	s.freshLoads.Add(1)
	return fl
}

func (s *Store) freshLoadMin() int {
	if s.freshMin > 0 {
		return s.freshMin
	}
	return freshLoadRows
}

// pg runs fn on the load's connection as pgx.
func (f *freshLoad) pg(fn func(*pgx.Conn) error) error {
	return f.conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("not a pgx connection: %T", dc)
		}
		return fn(sc.Conn())
	})
}

func (f *freshLoad) exec(ctx context.Context, sqls ...string) error {
	return f.pg(func(c *pgx.Conn) error {
		for _, q := range sqls {
			if _, err := c.Exec(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
}

func (f *freshLoad) prepare(ctx context.Context) (bool, error) {
	if err := f.exec(ctx, "BEGIN", "SET LOCAL lock_timeout = '2s'"); err != nil {
		return false, err
	}
	// Not while customer_search is being filled (search.go): the fill
	// would mark it complete after this load had marked it not.
	if err := f.exec(ctx, "SELECT pg_advisory_xact_lock("+searchLock+")"); err != nil {
		return false, err
	}
	for _, t := range freshTables {
		if err := f.exec(ctx, "LOCK TABLE "+t+" IN ACCESS EXCLUSIVE MODE"); err != nil {
			return false, err
		}
	}
	if err := f.exec(ctx, "SET LOCAL lock_timeout = 0"); err != nil {
		return false, err
	}
	var taken bool
	err := f.pg(func(c *pgx.Conn) error {
		return c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM customers) OR EXISTS (SELECT 1 FROM level_ledger)").Scan(&taken)
	})
	if err != nil || taken {
		return false, err
	}
	var drops, fkeys []string
	type named struct{ Name, Def string }
	err = f.pg(func(c *pgx.Conn) error {
		for _, t := range freshTables {
			// Unique constraints, foreign keys to customers (customers' own
			// to users stays: every row points at one of a few reps), and
			// a primary key no foreign key points at: the ledger's.
			// Customers' stays, for the keys of invitations, purchases and
			// the rest, which are not the load's to drop. Dropped with them
			// (those tables held and empty too), it saved nothing: the copy
			// waits on the cores, not on the key (three seeds each,
			// alternating: 19.3-23.1 s without it, 20.0-22.1 s with it).
			rows, _ := c.Query(ctx, `SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint k
				WHERE conrelid = $1::regclass AND (contype = 'u' OR (contype = 'f' AND confrelid = 'customers'::regclass)
				  OR (contype = 'p' AND NOT EXISTS (SELECT 1 FROM pg_constraint r WHERE r.contype = 'f' AND r.conindid = k.conindid)))
				ORDER BY conname`, t)
			cons, err := pgx.CollectRows(rows, pgx.RowToStructByPos[named])
			if err != nil {
				return err
			}
			for _, k := range cons {
				name := pgx.Identifier{k.Name}.Sanitize()
				drops = append(drops, "ALTER TABLE "+t+" DROP CONSTRAINT "+name)
				add := "ALTER TABLE " + t + " ADD CONSTRAINT " + name + " " + k.Def
				if strings.HasPrefix(k.Def, "FOREIGN KEY") {
					fkeys = append(fkeys, add) // once every index is back
				} else {
					f.rebuild = append(f.rebuild, add)
				}
			}
			// Indexes that back no constraint.
			rows, _ = c.Query(ctx, `SELECT c.relname, pg_get_indexdef(i.indexrelid)
				FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
				WHERE i.indrelid = $1::regclass AND NOT i.indisprimary AND c.relname <> ALL($2)
				  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
				ORDER BY c.relname`, t, freshLoadKeeps)
			idx, err := pgx.CollectRows(rows, pgx.RowToStructByPos[named])
			if err != nil {
				return err
			}
			for _, ix := range idx {
				drops = append(drops, "DROP INDEX "+pgx.Identifier{ix.Name}.Sanitize())
				f.rebuild = append(f.rebuild, ix.Def)
			}
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	f.rebuild = append(f.rebuild, fkeys...)
	if err := f.exec(ctx, drops...); err != nil {
		return false, err // something depends on one of them: the ordinary path
	}
	// customer_search is left to the scheduler (FillCustomerSearch):
	// filled here, with its trigram index built again, it would take a
	// million customers' load from about 17 s to 40. Its insert trigger is
	// dropped, not disabled: PostgreSQL still gathers a disabled trigger's
	// transition table, every row copied in, and the load took 37 s.
	var trigger string
	if err := f.pg(func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT pg_get_triggerdef(oid) FROM pg_trigger
			WHERE tgrelid = 'customers'::regclass AND tgname = 'customer_search_insert'`).Scan(&trigger)
	}); err != nil {
		return false, err
	}
	if err := f.exec(ctx, "DROP TRIGGER customer_search_insert ON customers",
		"UPDATE customer_search_state SET complete = false"); err != nil {
		return false, err
	}
	f.rebuild = append(f.rebuild, trigger)
	return true, nil
}

// customerCopySQL copies customers in PostgreSQL's binary format, in the
// order appendCustomerCopy writes each row's fields.
const customerCopySQL = `COPY customers (id, external_id, name, email, company, metro_area, metro_key,
	annual_spend_cents, level, owner_id, phone, consent_state, consent_changed_at, consent_reason,
	created_at, updated_at) FROM STDIN BINARY`

// appendCustomerCopy appends cs, with ids from first on, to b as the rows
// of a binary COPY (header, rows, trailer). pgx's CopyFrom does the same
// through its type map: every value boxed in an interface and its encode
// plan looked up, a third of the Go process's CPU in a million-customer
// seed (perf), on the cores PostgreSQL's backend waits for. The column
// types are the schema's (bigint, text, smallint, timestamptz); a column
// whose type changed is refused by PostgreSQL ("incorrect binary data
// format"), which the fresh-load tests would show.
func appendCustomerCopy(b []byte, cs []*Customer, first int64) []byte {
	b = append(b, "PGCOPY\n\377\r\n\000"...)
	b = binary.BigEndian.AppendUint32(b, 0) // flags
	b = binary.BigEndian.AppendUint32(b, 0) // header extension length
	for i, k := range cs {
		b = binary.BigEndian.AppendUint16(b, 16) // fields
		b = copyInt64(b, first+int64(i))
		if k.ExternalID == nil {
			b = copyNull(b)
		} else {
			b = copyText(b, *k.ExternalID)
		}
		b = copyText(b, k.Name)
		b = copyText(b, k.Email)
		b = copyText(b, k.Company)
		b = copyText(b, k.MetroArea)
		b = copyText(b, k.MetroKey)
		b = copyInt64(b, k.AnnualSpendCents)
		b = binary.BigEndian.AppendUint32(b, 2)
		b = binary.BigEndian.AppendUint16(b, uint16(k.Level))
		if k.OwnerID == nil {
			b = copyNull(b)
		} else {
			b = copyInt64(b, *k.OwnerID)
		}
		b = copyText(b, k.Phone)
		b = copyText(b, string(k.ConsentState))
		if k.ConsentChangedAt == nil {
			b = copyNull(b)
		} else {
			b = copyTime(b, *k.ConsentChangedAt)
		}
		b = copyText(b, k.ConsentReason)
		b = copyTime(b, k.CreatedAt)
		b = copyTime(b, k.UpdatedAt)
	}
	return binary.BigEndian.AppendUint16(b, 0xffff) // trailer: -1
}

func copyNull(b []byte) []byte { return binary.BigEndian.AppendUint32(b, 0xffffffff) }

func copyText(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func copyInt64(b []byte, v int64) []byte {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

// pgEpoch is where timestamptz counts its microseconds from.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()

// copyTime truncates to the microsecond, as PostgreSQL stores it.
func copyTime(b []byte, t time.Time) []byte {
	us := (t.Unix()-pgEpoch)*1_000_000 + int64(t.Nanosecond()/1000)
	return copyInt64(b, us)
}

// errLoadBroken is a fresh load that cannot go on: a batch failed and its
// savepoint could not be rolled back, so the transaction is aborted and
// retrying its rows one by one would only fail each of them.
var errLoadBroken = errors.New("the load's transaction is aborted")

// insertCustomers copies new customers in and sets their IDs. A batch the
// database refuses leaves nothing behind (a savepoint), so an import can
// retry its rows one by one.
func (f *freshLoad) insertCustomers(ctx context.Context, cs []*Customer) error {
	if len(cs) == 0 {
		return nil
	}
	f.batches++
	sp := fmt.Sprintf("batch_%d", f.batches)
	return f.pg(func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, "SAVEPOINT "+sp); err != nil {
			return err
		}
		var first int64
		err := func() (err error) {
			if first, err = takeIDs(ctx, c, "customers", len(cs)); err != nil {
				return err
			}
			f.copyBuf = appendCustomerCopy(f.copyBuf[:0], cs, first)
			if _, err = c.PgConn().CopyFrom(ctx, bytes.NewReader(f.copyBuf), customerCopySQL); err != nil {
				return err
			}
			_, err = c.Exec(ctx, "RELEASE SAVEPOINT "+sp)
			return err
		}()
		if err != nil {
			if _, rerr := c.Exec(context.WithoutCancel(ctx), "ROLLBACK TO SAVEPOINT "+sp); rerr != nil {
				return fmt.Errorf("%w: %w (%w)", errLoadBroken, err, rerr)
			}
			return err
		}
		for i, k := range cs {
			k.ID = first + int64(i)
		}
		return nil
	})
}

// takeIDs reserves n ids from table's id sequence in one step and returns
// the first; a nextval per row cost 8 µs. The load holds the table, so
// nothing else draws from its sequence meanwhile (a default is drawn only
// once the inserting statement has its lock).
func takeIDs(ctx context.Context, c *pgx.Conn, table string, n int) (int64, error) {
	var last int64
	err := c.QueryRow(ctx, "SELECT setval(s, nextval(s) + $2 - 1) FROM pg_get_serial_sequence($1, 'id') AS s", table, n).Scan(&last)
	return last - int64(n) + 1, err
}

// commit writes each new customer's "created" ledger row, builds the
// constraints and indexes again, refreshes the planner's statistics and
// commits. A duplicate that slipped past the load's own checks fails its
// unique constraint here, and the load rolls back whole.
func (f *freshLoad) commit(ctx context.Context, source, actor string) error {
	copied := time.Now()
	err := f.pg(func(c *pgx.Conn) error {
		// Each row's id follows its customer's: the load's ids are one run,
		// but for any batch an import rolled back.
		var lo, hi *int64
		if err := c.QueryRow(ctx, "SELECT min(id), max(id) FROM customers").Scan(&lo, &hi); err != nil || lo == nil {
			return err
		}
		first, err := takeIDs(ctx, c, "level_ledger", int(*hi-*lo+1))
		if err != nil {
			return err
		}
		_, err = c.Exec(ctx, `INSERT INTO level_ledger (id, customer_id, from_level, to_level, rule, source, actor, note, created_at)
			SELECT $1 + id, id, 0, level, $2, $3, $4, '', created_at FROM customers`,
			first-*lo, RuleCreated, source, actor)
		return err
	})
	if err != nil {
		f.rollback()
		return fmt.Errorf("record the new customers in the ledger: %w", err)
	}
	ledgered := time.Now()
	// Each build sorts the whole table; more memory keeps the sort in RAM.
	stmts := append([]string{"SET LOCAL maintenance_work_mem = '256MB'"}, f.rebuild...)
	stmts = append(stmts, "ANALYZE customers", "ANALYZE level_ledger")
	if err := f.exec(ctx, stmts...); err != nil {
		f.rollback()
		return fmt.Errorf("rebuild the customers indexes: %w", err)
	}
	rebuilt := time.Now()
	if err := ctx.Err(); err != nil {
		f.rollback()
		return err
	}
	// COMMIT is not cancelled: cut off while waiting for its answer, it
	// could land while the load reported that nothing had.
	if err := f.exec(context.WithoutCancel(ctx), "COMMIT"); err != nil {
		_ = f.conn.Raw(func(any) error { return driver.ErrBadConn })
		_ = f.conn.Close()
		return fmt.Errorf("commit the load: %w", err)
	}
	// Where a committed load's time went: most of a large one is the
	// rebuild (keys, indexes, the foreign key's check, statistics), which
	// the rows per second do not show. Seconds, so scripts can read them.
	secs := func(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }
	slog.InfoContext(ctx, "bulk load committed", "copy", secs(copied.Sub(f.began)), "ledger", secs(ledgered.Sub(copied)),
		"rebuild", secs(rebuilt.Sub(ledgered)), "commit", secs(time.Since(rebuilt)))
	return f.conn.Close()
}

// rollback ends the load with nothing written. The connection goes back
// to the pool only if it is known to be out of the transaction.
func (f *freshLoad) rollback() {
	err := f.exec(context.Background(), "ROLLBACK")
	if err != nil {
		_ = f.conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	_ = f.conn.Close()
}

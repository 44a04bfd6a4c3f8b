package campaigns

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/rapport/rapport/campaigns/migrations"
	"github.com/rapport/rapport/config"
)

// Store is Rapport's storage: one *gorm.DB on PostgreSQL or SQLite. Every
// query in Rapport is a method of Store (or of a service built on it).
type Store struct {
	db      *gorm.DB
	sqlDB   *sql.DB
	dialect config.Dialect
	now     func() time.Time

	lowBcrypt bool

	countsMu sync.Mutex
	counts   map[string]cachedCount // see countCustomers

	metrosMu sync.Mutex
	metros   []MetroCount // see Metros

	metrosAt time.Time

	freshMin   int           // rows a load needs to take the fresh path; 0 means freshLoadRows
	importBeat time.Duration // an import's heartbeat; 0 means importHeartbeat
	windowRows int           // runs per ROI query on SQLite; 0 means sqliteWindowRows
	freshLoads atomic.Int64  // fresh loads begun, for tests

	answers    batches[*answerReq, answerOut] // RSVP answers waiting to be settled, per event
	arrivals   batches[*arrival, arrived]     // first check-ins waiting to be written, per event
	guestQuery guestQuery                     // see guestByToken

	dsn        string       // PostgreSQL's, for the connection that listens (tokencache.go)
	tokens     tokenCache   // API tokens found, see TokenBySecret
	tokenReads atomic.Int64 // tokens read from the database, for tests
}

// Open connects to the database a DATABASE_URL names. It does not migrate.
func Open(ctx context.Context, databaseURL string) (*Store, error) {
	dialect, dsn, err := config.ParseDatabaseURL(databaseURL)
	if err != nil {
		return nil, err
	}
	gcfg := &gorm.Config{
		Logger:                 slowQueryLogger{threshold: time.Second},
		NowFunc:                func() time.Time { return time.Now().UTC() },
		SkipDefaultTransaction: true,
		TranslateError:         true,
	}
	var db *gorm.DB
	switch dialect {
	case config.Postgres:
		db, err = gorm.Open(postgres.Open(dsn), gcfg)
	case config.SQLite:
		if dir := filepath.Dir(dsn); dir != "." && dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("create the database folder %s: %w", dir, err)
			}
		}
		// WAL lets readers run beside the one writer; busy_timeout makes a
		// second writer wait instead of failing; _txlock=immediate takes the
		// write lock at BEGIN so two transactions never deadlock upgrading.
		// (No _time_format: the driver ignores every parameter after it.)
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		dsn += sep + "_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)" +
			"&_pragma=synchronous(NORMAL)&_txlock=immediate"
		db, err = gorm.Open(sqlite.Open(dsn), gcfg)
	}
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	if dialect == config.SQLite {
		sqlDB.SetMaxOpenConns(sqliteConns)
	} else {
		sqlDB.SetMaxOpenConns(postgresConns)
		sqlDB.SetMaxIdleConns(postgresConns)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("connect to %s database: %w", dialect, err)
	}
	s := &Store{db: db, sqlDB: sqlDB, dialect: dialect, now: func() time.Time { return time.Now().UTC() }}
	if dialect == config.Postgres {
		s.dsn = dsn
	}
	s.answers.what, s.arrivals.what = "RSVP answers", "check-ins"
	return s, nil
}

// Close releases the connections.
func (s *Store) Close() error {
	s.stopListening()
	return s.sqlDB.Close()
}

// Dialect tells which database this is.
func (s *Store) Dialect() config.Dialect { return s.dialect }

// Connections each process opens at most.
const (
	postgresConns = 20
	sqliteConns   = 4
)

// MaxOpenConns is how many database connections the store opens at most.
func (s *Store) MaxOpenConns() int {
	if s.dialect == config.SQLite {
		return sqliteConns
	}
	return postgresConns
}

// Ping answers whether the database is reachable.
func (s *Store) Ping(ctx context.Context) error { return s.sqlDB.PingContext(ctx) }

// SetClock replaces the clock; tests use it to move time.
func (s *Store) SetClock(now func() time.Time) { s.now = func() time.Time { return now().UTC() } }

// DB is the underlying handle, for tests and benchmarks that inspect plans.
func (s *Store) DB() *gorm.DB { return s.db }

func (s *Store) provider() (*goose.Provider, error) {
	sub, err := fs.Sub(migrations.FS, string(s.dialect))
	if err != nil {
		return nil, err
	}
	var opts []goose.ProviderOption
	d := goose.DialectSQLite3
	if s.dialect == config.Postgres {
		d = goose.DialectPostgres
		// Two releases migrating at once take turns on an advisory lock.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	return goose.NewProvider(d, s.sqlDB, sub, opts...)
}

// Migrate applies every pending migration and returns how many ran.
func (s *Store) Migrate(ctx context.Context) (int, error) {
	p, err := s.provider()
	if err != nil {
		return 0, err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return len(res), fmt.Errorf("migrate: %w", err)
	}
	return len(res), nil
}

// PendingMigrations counts migrations not yet applied.
func (s *Store) PendingMigrations(ctx context.Context) (int, error) {
	p, err := s.provider()
	if err != nil {
		return 0, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("read migration status: %w", err)
	}
	n := 0
	for _, m := range st {
		if m.State == goose.StatePending {
			n++
		}
	}
	return n, nil
}

// tx runs fn in a transaction bound to ctx.
func (s *Store) tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.db.WithContext(ctx).Transaction(fn)
}

// dollarArg is a PostgreSQL placeholder: $1, $2, …
var dollarArg = regexp.MustCompile(`\$(\d+)`)

// rebind turns a hand-written query's $n placeholders into SQLite's ?n,
// for the few hot reads that go through database/sql instead of GORM.
func (s *Store) rebind(q string) string {
	if s.dialect == config.Postgres {
		return q
	}
	return dollarArg.ReplaceAllString(q, "?$1")
}

// notFound maps gorm's not-found to the domain's.
func notFound(err error, what string, id any) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Errorf(ENOTFOUND, "%s %v not found", what, id)
	}
	return err
}

// Package campaignstest gives tests a real, fresh, migrated database: SQLite
// always, and PostgreSQL when TEST_DATABASE_URL is set (each test in a
// schema of its own, dropped afterwards), so tests may run in parallel.
package campaignstest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver for schema set-up
	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
)

// Dialects are the databases a test can run on.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Available lists the databases tests run on here. In CI a missing
// TEST_DATABASE_URL is a failure, not a skip.
func Available(t testing.TB) []string {
	if os.Getenv("TEST_DATABASE_URL") != "" {
		return []string{SQLite, Postgres}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("TEST_DATABASE_URL is not set in CI: the PostgreSQL tests would be skipped")
	}
	return []string{SQLite}
}

// Each runs fn once per available database, as parallel subtests.
func Each(t *testing.T, fn func(t *testing.T, s *campaigns.Store)) {
	for _, d := range Available(t) {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			fn(t, Open(t, d))
		})
	}
}

// Open returns a fresh migrated store on dialect, closed when the test ends.
func Open(t testing.TB, dialect string) *campaigns.Store {
	t.Helper()
	u := URL(t, dialect)
	s, err := campaigns.Open(context.Background(), u)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	_, err = s.Migrate(context.Background())
	require.NoError(t, err)
	s.UseFastPasswordHashing()
	return s
}

// URL returns a DATABASE_URL for a fresh, empty database of dialect: a file
// in a temporary folder, or a new schema on TEST_DATABASE_URL. The schema
// is dropped when the test ends. Tests that start `rapport` processes use it.
func URL(t testing.TB, dialect string) string {
	t.Helper()
	switch dialect {
	case SQLite:
		return "sqlite:" + filepath.Join(t.TempDir(), "rapport.db")
	case Postgres:
		base := os.Getenv("TEST_DATABASE_URL")
		if base == "" {
			t.Skip("TEST_DATABASE_URL is not set")
		}
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		schema := "t_" + hex.EncodeToString(b)
		admin, err := sql.Open("pgx", base)
		require.NoError(t, err)
		// pg_trgm (migration 00016) is installed once, in public, as a DBA
		// would: installed by a migration it would land in this test's
		// schema, and go with it, from under the indexes of the tests
		// running beside it.
		if _, err := admin.Exec("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"); err != nil {
			var n int
			require.NoError(t, admin.QueryRow("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'").Scan(&n), err.Error())
			require.Equal(t, 1, n, "pg_trgm: %v", err) // created meanwhile by a test beside this one
		}
		_, err = admin.Exec("CREATE SCHEMA " + schema)
		require.NoError(t, err)
		t.Cleanup(func() {
			_, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
			_ = admin.Close()
		})
		pu, err := url.Parse(base)
		require.NoError(t, err)
		q := pu.Query()
		q.Set("search_path", schema)
		pu.RawQuery = q.Encode()
		return pu.String()
	}
	t.Fatalf("unknown dialect %q", dialect)
	return ""
}

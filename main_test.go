package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
)

// rapport runs one command in-process, as the binary would, and returns
// its exit code, stdout and stderr.
func rapport(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func useDB(t *testing.T, url string) {
	t.Setenv("DATABASE_URL", url)
	for _, k := range []string{"PORT", "BASE_URL", "APP_SECRET", "SENDGRID_API_KEY", "SENDGRID_BASE_URL", "MAIL_FROM", "SCHEDULER_TICK"} {
		t.Setenv(k, "")
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	useDB(t, campaignstest.URL(t, campaignstest.SQLite))
	for _, args := range [][]string{
		{}, {"frobnicate"}, {"user"}, {"user", "add"}, {"user", "add", "--email", "a@example.com", "--role", "boss"},
		{"token", "create", "--role", "admin"}, {"import"}, {"import", "customers"}, {"seed"}, {"serve", "--bogus"},
	} {
		code, _, stderr := rapport(t, "", args...)
		require.Equal(t, 2, code, "args %v", args)
		require.Contains(t, stderr, "usage: rapport")
	}
}

func TestCommandsOnSQLite(t *testing.T) {
	useDB(t, campaignstest.URL(t, campaignstest.SQLite))

	code, out, _ := rapport(t, "", "migrate")
	require.Equal(t, 0, code)
	require.Regexp(t, `applied [1-9][0-9]* migration`, out)

	code, out, stderr := rapport(t, "correct horse battery\n", "user", "add", "--email", "Ana@Example.com", "--role", "coordinator")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "created ana@example.com (coordinator)")

	code, _, stderr = rapport(t, "correct horse battery\n", "user", "add", "--email", "ana@example.com", "--role", "rep")
	require.Equal(t, 1, code)
	require.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
	require.Contains(t, stderr, "email")

	code, _, stderr = rapport(t, "short\n", "user", "add", "--email", "bo@example.com", "--role", "rep")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "password")

	code, out, _ = rapport(t, "", "token", "create", "--role", "finance", "--name", "ledger sync")
	require.Equal(t, 0, code)
	require.Regexp(t, regexp.MustCompile(`^rpt_[a-z0-9]{32}\n$`), out, "the token alone on stdout")

	dir := t.TempDir()
	good := filepath.Join(dir, "crm.csv")
	require.NoError(t, os.WriteFile(good, []byte("\ufeffname,email,annual_spend,level,metro_area\r\n"+
		"José García,jose@example.com,\"$1,234.50\",Good customer,Chicago\r\n"+
		"Bad Row,not-an-email,12,3,Chicago\r\n"+
		"Zoë Müller,zoe@example.com,1234,friend,Evanston\r\n"), 0o644))
	code, out, stderr = rapport(t, "", "import", "customers", good)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "row 3 rejected: email:")
	require.Contains(t, out, "inserted 2, updated 0, unchanged 0, rejected 1")

	code, out, _ = rapport(t, "", "import", "customers", good)
	require.Equal(t, 0, code)
	require.Contains(t, out, "inserted 0, updated 0, unchanged 2, rejected 1")

	bin := filepath.Join(dir, "sheet.xlsx")
	require.NoError(t, os.WriteFile(bin, []byte("PK\x03\x04\x00\x00binary"), 0o644))
	code, out, stderr = rapport(t, "", "import", "customers", bin)
	require.Equal(t, 1, code)
	require.Empty(t, out)
	require.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
	require.Contains(t, stderr, "not a CSV file")

	code, _, stderr = rapport(t, "", "import", "customers", filepath.Join(dir, "missing.csv"))
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "missing.csv")

	code, out, _ = rapport(t, "", "seed", "--customers", "300", "--metros", "3")
	require.Equal(t, 0, code)
	require.Contains(t, out, "seeded 300 customers")
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

func TestServeAndWorkerStopCleanly(t *testing.T) {
	useDB(t, campaignstest.URL(t, campaignstest.SQLite))
	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"serve", "--demo", "--addr", addr}, strings.NewReader(""), &out, &errb)
	}()
	var resp *http.Response
	require.Eventually(t, func() bool {
		var err error
		resp, err = http.Get("http://" + addr + "/healthz")
		return err == nil
	}, 60*time.Second, 50*time.Millisecond, "serve did not come up: %s", errb.String()) // --demo seeds first: 13 s under -race on a busy CI machine
	require.Equal(t, 200, resp.StatusCode)
	resp.Body.Close()
	cancel()
	select {
	case code := <-done:
		require.Equal(t, 0, code, "stderr: %s", errb.String())
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	require.Regexp(t, `Sign in at .* as admin@example.com with password [a-z0-9]{16}`, out.String())

	ctx, cancel = context.WithCancel(context.Background())
	var werr syncBuffer
	go func() { done <- run(ctx, []string{"worker"}, strings.NewReader(""), &out, &werr) }()
	require.Eventually(t, func() bool { return strings.Contains(werr.String(), "scheduler started") }, 10*time.Second, 20*time.Millisecond)
	cancel()
	require.Equal(t, 0, <-done, "stderr: %s", werr.String())
	require.Contains(t, werr.String(), "scheduler stopped")
}

func TestServeOnPostgresRefusesPendingMigrations(t *testing.T) {
	if len(campaignstest.Available(t)) < 2 {
		t.Skip("TEST_DATABASE_URL is not set")
	}
	useDB(t, campaignstest.URL(t, campaignstest.Postgres))
	code, _, stderr := rapport(t, "", "serve", "--addr", freePort(t))
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "run `rapport migrate` first")

	code, out, _ := rapport(t, "", "migrate")
	require.Equal(t, 0, code, out)
	code, out, _ = rapport(t, "", "migrate")
	require.Equal(t, 0, code)
	require.Contains(t, out, "applied 0 migration")
	code, out, _ = rapport(t, "", "seed", "--customers", "100")
	require.Equal(t, 0, code)
	require.Contains(t, out, fmt.Sprintf("seeded %d customers", 100))
}

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestImportStoppedPartWaySaysWhatItStored: a CLI import cut short (here
// by its context, as Ctrl-C does) keeps the batches it committed, and says
// so, with the rows it had refused.
func TestImportStoppedPartWaySaysWhatItStored(t *testing.T) {
	// PostgreSQL where there is one: SQLite's pure-Go driver takes minutes
	// for a batch under the race detector.
	dialect := campaignstest.SQLite
	if len(campaignstest.Available(t)) == 2 {
		dialect = campaignstest.Postgres
	}
	url := campaignstest.URL(t, dialect)
	useDB(t, url)
	code, _, stderr := rapport(t, "", "migrate")
	require.Equal(t, 0, code, stderr)
	// One customer first, so that the big file takes the ordinary path,
	// batch by batch, not a fresh load's all or nothing.
	code, _, stderr = rapport(t, "", "seed", "--customers", "1")
	require.Equal(t, 0, code, stderr)
	var b strings.Builder
	b.WriteString("name,email\nBad,not-an-email\n")
	for i := range 200000 {
		fmt.Fprintf(&b, "Person %d,p%d@example.com\n", i, i)
	}
	file := filepath.Join(t.TempDir(), "big.csv")
	require.NoError(t, os.WriteFile(file, []byte(b.String()), 0o644))

	store, err := campaigns.Open(context.Background(), url)
	require.NoError(t, err)
	defer store.Close()
	customers := func() int64 {
		var n int64
		require.NoError(t, store.DB().Raw("SELECT count(*) FROM customers").Scan(&n).Error)
		return n
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb bytes.Buffer
	done := make(chan int)
	go func() { done <- run(ctx, []string{"import", "customers", file}, strings.NewReader(""), &out, &errb) }()
	require.Eventually(t, func() bool { return customers() > 1 }, 2*time.Minute, 5*time.Millisecond)
	cancel()
	code = <-done
	require.Equal(t, 1, code)
	require.Contains(t, out.String(), "row 2 rejected: email:")
	require.Regexp(t, `stopped after \d+ rows: inserted [1-9]\d*, updated 0, unchanged 0, rejected 1\n`, out.String())
	// Exactly what is stored, even when the cancel caught a batch whose
	// commit had reached the database.
	require.Contains(t, out.String(), fmt.Sprintf("inserted %d, updated 0", customers()-1))
	require.Contains(t, errb.String(), "run the import again to complete it")
	require.Less(t, customers(), int64(200001), "it stopped before the end")
}

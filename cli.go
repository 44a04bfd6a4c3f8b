package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/config"
)

func loadConfig() (config.Config, error) { return config.Load(os.Getenv) }

func newFlags(name string, e env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors become one usage line, not flag's dump
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Sprintf("%s: %v", fs.Name(), err)}
	}
	return nil
}

func cmdServe(ctx context.Context, args []string, e env) error {
	fs := newFlags("serve", e)
	addr := fs.String("addr", "", "listen address (default :$PORT or :3000)")
	demo := fs.Bool("demo", false, "fill an empty database with demo users and customers")
	noWorker := fs.Bool("no-worker", false, "do not run the scheduler in this process")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"serve takes no arguments"}
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	if *addr != "" {
		cfg.SetAddr(*addr)
	}
	if cfg.BaseURLDefaulted {
		e.log.Info("BASE_URL is not set; links in emails use " + cfg.BaseURL)
	}
	// The embedded default migrates itself, so `go run . serve` just works;
	// PostgreSQL is migrated by the release step and refuses to start behind.
	store, err := openStore(ctx, cfg, isSQLite(cfg), e.log)
	if err != nil {
		return err
	}
	defer store.Close()
	if *demo {
		pw, err := store.Demo(ctx)
		if err != nil {
			return fmt.Errorf("demo data: %w", err)
		}
		if pw != "" {
			fmt.Fprintf(e.stdout, "Demo data created. Sign in at http://localhost%s as %s with password %s (shown once).\n",
				cfg.Addr, campaigns.DemoAdminEmail, pw)
		}
	}
	if n, err := store.CountUsers(ctx); err == nil && n == 0 {
		fmt.Fprintln(e.stdout, "No users yet: create an admin with `rapport user add --email you@example.com --role admin`, or start with --demo.")
	}
	return serve(ctx, cfg, store, *noWorker, e.log)
}

func isSQLite(cfg config.Config) bool {
	d, _, _ := config.ParseDatabaseURL(cfg.DatabaseURL)
	return d == config.SQLite
}

func cmdWorker(ctx context.Context, args []string, e env) error {
	fs := newFlags("worker", e)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	// A worker's live heap is small and turns over a batch at a time, so
	// the collector ran often for little: collecting at 4× the live heap
	// instead of 2× (GOGC 300, not 100) saved a fifth of the worker's CPU
	// in a 100,000-guest send, for a peak of 80 MB instead of 45. GOGC,
	// when set, still decides.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(300)
	}
	store, err := openStore(ctx, cfg, isSQLite(cfg), e.log)
	if err != nil {
		return err
	}
	defer store.Close()
	return work(ctx, cfg, store, e.log)
}

func cmdMigrate(ctx context.Context, args []string, e env) error {
	fs := newFlags("migrate", e)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	store, err := campaigns.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer store.Close()
	n, err := store.Migrate(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "applied %d migration(s); the schema is up to date\n", n)
	return nil
}

// storeForCommand opens the store for an admin command; the embedded
// default migrates itself, PostgreSQL must be migrated.
func storeForCommand(ctx context.Context, e env) (*campaigns.Store, error) {
	cfg, err := loadConfig()
	if err != nil {
		return nil, err
	}
	return openStore(ctx, cfg, isSQLite(cfg), e.log)
}

func cmdUserAdd(ctx context.Context, args []string, e env) error {
	fs := newFlags("user add", e)
	email := fs.String("email", "", "")
	role := fs.String("role", "", "")
	name := fs.String("name", "", "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *email == "" || *role == "" {
		return usageError{"user add needs --email and --role"}
	}
	r, err := campaigns.ParseRole(*role)
	if err != nil {
		return usageError{"--role must be one of admin, coordinator, rep, finance"}
	}
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(e.stderr, "Password (10+ characters): ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return err
		}
		e.stdin = strings.NewReader(string(b) + "\n")
	}
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read the password from stdin: %w", err)
	}
	password := strings.TrimRight(line, "\r\n")
	if password == "" {
		return errors.New("no password on stdin: pipe it in, e.g. `echo \"$PASSWORD\" | rapport user add ...`")
	}
	store, err := storeForCommand(ctx, e)
	if err != nil {
		return err
	}
	defer store.Close()
	u, err := store.CreateUser(ctx, campaigns.NewUser{Email: *email, Name: *name, Role: r, Password: password})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "created %s (%s), user id %d\n", u.Email, u.Role, u.ID)
	return nil
}

func cmdTokenCreate(ctx context.Context, args []string, e env) error {
	fs := newFlags("token create", e)
	role := fs.String("role", "", "")
	name := fs.String("name", "", "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *role == "" || strings.TrimSpace(*name) == "" {
		return usageError{"token create needs --role and --name"}
	}
	r, err := campaigns.ParseRole(*role)
	if err != nil {
		return usageError{"--role must be one of admin, coordinator, rep, finance"}
	}
	store, err := storeForCommand(ctx, e)
	if err != nil {
		return err
	}
	defer store.Close()
	plain, _, err := store.CreateToken(ctx, *name, r, nil)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, plain)
	return nil
}

func cmdImportCustomers(ctx context.Context, args []string, e env) error {
	fs := newFlags("import customers", e)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"import customers needs one FILE.csv"}
	}
	path := fs.Arg(0)
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a folder, not a CSV file", path)
	}
	store, err := storeForCommand(ctx, e)
	if err != nil {
		return err
	}
	defer store.Close()

	var bar *progressbar.ProgressBar
	if w, ok := e.stderr.(*os.File); ok && term.IsTerminal(int(w.Fd())) {
		bar = progressbar.NewOptions64(st.Size(), progressbar.OptionSetWriter(w), progressbar.OptionShowBytes(true),
			progressbar.OptionSetDescription("importing "+path), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish())
	}
	start := time.Now()
	res, err := store.ImportCustomers(ctx, f, campaigns.ImportOptions{Filename: path, Size: st.Size(), Actor: "cli",
		Progress: func(im campaigns.Import) {
			if bar != nil {
				_ = bar.Set64(im.BytesRead)
			}
		}})
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil && (errors.Is(err, campaigns.ErrNotCSV) || res == nil) {
		return fmt.Errorf("%s: %v; nothing was imported", path, err)
	}
	for _, p := range res.Problems {
		fmt.Fprintln(e.stdout, p.String())
	}
	if res.MoreWarnings > 0 {
		fmt.Fprintf(e.stdout, "… and %d more warnings\n", res.MoreWarnings)
	}
	if err != nil {
		// Stopped part-way: what it stored stays, so say what that was;
		// running it again completes it.
		fmt.Fprintf(e.stdout, "stopped after %d rows: inserted %d, updated %d, unchanged %d, rejected %d\n",
			res.RowsRead, res.Inserted, res.Updated, res.Unchanged, res.Rejected)
		if res.Inserted+res.Updated > 0 {
			return fmt.Errorf("%w (what is stored above stays; run the import again to complete it)", err)
		}
		return err
	}
	el := time.Since(start)
	fmt.Fprintf(e.stdout, "%d rows in %s (%.0f rows/s): inserted %d, updated %d, unchanged %d, rejected %d\n",
		res.RowsRead, el.Round(time.Millisecond), float64(res.RowsRead)/el.Seconds(),
		res.Inserted, res.Updated, res.Unchanged, res.Rejected)
	return noteSearchFill(ctx, store, e)
}

// noteSearchFill tells, after a bulk load, that customer search stays
// slow until the scheduler has filled its table (campaigns/search.go).
func noteSearchFill(ctx context.Context, store *campaigns.Store, e env) error {
	filled, err := store.CustomerSearchFilled(ctx)
	if err != nil {
		// The load itself succeeded; only this note could not be made.
		fmt.Fprintln(e.stderr, "could not tell whether customer search is ready:", err)
		return nil
	}
	if filled {
		return nil
	}
	fmt.Fprintln(e.stderr, "customer search reads every customer until `rapport serve` or `rapport worker` has filled its table (about half a minute a million customers)")
	return nil
}

func cmdSeed(ctx context.Context, args []string, e env) error {
	fs := newFlags("seed", e)
	n := fs.Int("customers", 0, "")
	metros := fs.Int("metros", 5, "")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *n < 1 {
		return usageError{"seed needs --customers N (1 or more)"}
	}
	store, err := storeForCommand(ctx, e)
	if err != nil {
		return err
	}
	defer store.Close()
	start := time.Now()
	done, err := store.Seed(ctx, campaigns.SeedOptions{Customers: *n, Metros: *metros, Seed: *seed, Actor: "seed"})
	if err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Fprintf(e.stdout, "seeded %d customers in %s (%.0f/s)\n", done, el.Round(time.Millisecond), float64(done)/el.Seconds())
	return noteSearchFill(ctx, store, e)
}

// oneLine keeps an error message to a single line for stderr.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
}

func cmdImportPurchases(ctx context.Context, args []string, e env) error {
	fs := newFlags("import purchases", e)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"import purchases needs one FILE.csv"}
	}
	path := fs.Arg(0)
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	store, err := storeForCommand(ctx, e)
	if err != nil {
		return err
	}
	defer store.Close()
	start := time.Now()
	res, err := store.ImportPurchases(ctx, f, "cli")
	if err != nil {
		if errors.Is(err, campaigns.ErrNotCSV) {
			return fmt.Errorf("%s: %v; nothing was imported", path, err)
		}
		return err
	}
	for _, p := range res.Problems {
		fmt.Fprintln(e.stdout, p.String())
	}
	fmt.Fprintf(e.stdout, "%d rows in %s: inserted %d, already recorded %d, rejected %d\n",
		res.Rows, time.Since(start).Round(time.Millisecond), res.Inserted, res.Existing, res.Rejected)
	return nil
}

// Command rapport is the event and gift outreach campaign manager: one
// binary for the web app, the worker, migrations and the admin commands.
// This file only wires: it reads configuration, opens the store, builds the
// services and starts them. See cli.go for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/rapport/rapport/app"
	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/config"
	"github.com/rapport/rapport/jobs"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is bad usage: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = `usage: rapport <command> [flags]

  serve [--addr :3000] [--demo] [--no-worker]   web app (and the scheduler, unless --no-worker)
  worker                                        the scheduler and senders only
  migrate                                       apply schema migrations, then exit
  user add --email E --role R [--name N]        create a user; the password is read from stdin
  token create --role R --name N                print a new API token once
  import customers FILE.csv                     upsert customers from a CSV
  import purchases FILE.csv                     add purchases (idempotent on external_id)
  seed --customers N [--metros M]               add synthetic customers

roles: admin, coordinator, rep, finance. Configuration comes from the
environment: PORT, DATABASE_URL, BASE_URL, APP_SECRET, SENDGRID_API_KEY, ...`

// run executes one command and returns the process exit code: 0 on
// success, 1 on a failure explained in one line, 2 on bad usage.
// The command stops when ctx ends (SIGINT or SIGTERM in main).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	err := dispatch(ctx, args, env{stdin: stdin, stdout: stdout, stderr: stderr, log: log})
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "rapport: %s\n\n%s\n", ue.msg, usage)
		return 2
	default:
		fmt.Fprintf(stderr, "rapport: %s\n", oneLine(err))
		return 1
	}
}

type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	log            *slog.Logger
}

func dispatch(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		return usageError{"no command given"}
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return cmdServe(ctx, rest, e)
	case "worker":
		return cmdWorker(ctx, rest, e)
	case "migrate":
		return cmdMigrate(ctx, rest, e)
	case "user":
		if len(rest) == 0 || rest[0] != "add" {
			return usageError{"expected: user add --email E --role R"}
		}
		return cmdUserAdd(ctx, rest[1:], e)
	case "token":
		if len(rest) == 0 || rest[0] != "create" {
			return usageError{"expected: token create --role R --name N"}
		}
		return cmdTokenCreate(ctx, rest[1:], e)
	case "import":
		switch {
		case len(rest) > 0 && rest[0] == "customers":
			return cmdImportCustomers(ctx, rest[1:], e)
		case len(rest) > 0 && rest[0] == "purchases":
			return cmdImportPurchases(ctx, rest[1:], e)
		}
		return usageError{"expected: import customers FILE.csv, or import purchases FILE.csv"}
	case "seed":
		return cmdSeed(ctx, rest, e)
	case "help", "-h", "--help":
		fmt.Fprintln(e.stdout, usage)
		return nil
	default:
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

// openStore loads the configuration and opens the database. With migrate,
// pending migrations are applied; without it, pending migrations refuse
// the start (so a web process never runs against an older schema).
func openStore(ctx context.Context, cfg config.Config, migrate bool, log *slog.Logger) (*campaigns.Store, error) {
	store, err := campaigns.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if migrate {
		n, err := store.Migrate(ctx)
		if err != nil {
			store.Close()
			return nil, err
		}
		if n > 0 {
			log.Info("applied migrations", "count", n)
		}
		return store, nil
	}
	n, err := store.PendingMigrations(ctx)
	if err != nil {
		store.Close()
		return nil, err
	}
	if n > 0 {
		store.Close()
		return nil, fmt.Errorf("the database schema is %d migration(s) behind this binary; run `rapport migrate` first", n)
	}
	return store, nil
}

// mailerFor picks where email goes: SendGrid with a key, else the outbox.
func mailerFor(cfg config.Config, store *campaigns.Store) jobs.Mailer {
	if cfg.SendGridAPIKey == "" {
		return jobs.NewOutbox(store)
	}
	return jobs.NewSendGrid(jobs.SendGridConfig{APIKey: cfg.SendGridAPIKey, BaseURL: cfg.SendGridBaseURL, HTTPTimeout: cfg.SendTimeout})
}

var errServerStopped = errors.New("the server stopped before the import finished; upload the file again")

// serve runs the web app, and the scheduler unless noWorker, until ctx ends.
func serve(ctx context.Context, cfg config.Config, store *campaigns.Store, noWorker bool, log *slog.Logger) error {
	var background sync.WaitGroup
	imports, stopImports := context.WithCancelCause(context.Background())
	defer stopImports(nil)
	deps := app.Deps{Store: store, Config: cfg, Log: log, MailerName: mailerFor(cfg, store).Name(), ParseEvents: jobs.ParseEvents,
		Background: &background, Imports: imports}
	if cfg.SendGridWebhookPublicKey != "" {
		v, err := jobs.NewWebhookVerifier(cfg.SendGridWebhookPublicKey)
		if err != nil {
			return err
		}
		deps.Webhook = v
	}
	web, err := app.New(deps)
	if err != nil {
		return err
	}
	var sched *jobs.Scheduler
	if !noWorker {
		if sched, _, err = jobs.NewWorker(store, cfg, mailerFor(cfg, store), log); err != nil {
			return err
		}
		if err := sched.Start(); err != nil {
			return err
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- web.Listen(cfg.Addr) }()
	log.Info("rapport is listening", "addr", cfg.Addr, "database", string(store.Dialect()), "worker", !noWorker)
	select {
	case err := <-errc:
		if sched != nil {
			sched.Stop(context.Background())
		}
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	if err := web.ShutdownWithContext(sctx); err != nil {
		log.Warn("web shutdown", "err", err)
	}
	// A web import still running finishes (within the same bound). One cut
	// short is stopped and records why, so its page does not say
	// "importing" for ever; uploading the file again completes it.
	importsDone := make(chan struct{})
	go func() { background.Wait(); close(importsDone) }()
	select {
	case <-importsDone:
	case <-sctx.Done():
		stopImports(errServerStopped)
		select {
		case <-importsDone:
		case <-time.After(10 * time.Second):
		}
		log.Warn("stopped a web import still running; upload the file again to complete it")
	}
	if sched != nil {
		sched.Stop(sctx)
	}
	return nil
}

// work runs the scheduler alone until ctx ends.
func work(ctx context.Context, cfg config.Config, store *campaigns.Store, log *slog.Logger) error {
	sched, _, err := jobs.NewWorker(store, cfg, mailerFor(cfg, store), log)
	if err != nil {
		return err
	}
	if err := sched.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("worker stopping")
	sctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	sched.Stop(sctx)
	return nil
}

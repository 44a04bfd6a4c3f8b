// Package jobs runs Rapport's background work: the robfig/cron scheduler
// that looks for due work in the database every tick, and (as campaigns
// arrive) the dispatcher, the senders and the mail adapters.
package jobs

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/rapport/rapport/campaigns"
)

// Job is a unit of background work run on a schedule. Due work lives in
// the database, so a job that finds nothing to do returns quickly, and a
// worker that was down picks up what fell due meanwhile at its first tick.
type Job struct {
	Name string
	Spec string // cron spec, e.g. "@every 5s"
	Run  func(ctx context.Context) error
}

// Scheduler runs jobs with robfig/cron, each wrapped so a panic is logged
// instead of killing the worker, and a run still going is not overlapped.
type Scheduler struct {
	store   *campaigns.Store
	log     *slog.Logger
	tick    time.Duration
	cron    *cron.Cron
	ctx     context.Context
	cancel  context.CancelFunc
	jobs    []Job
	timeout time.Duration
	onStop  []func()
	running sync.WaitGroup // every run, from cron or from Start, so Stop can wait for it
}

// NewScheduler builds a scheduler with Rapport's standing jobs.
func NewScheduler(store *campaigns.Store, tick time.Duration, log *slog.Logger) *Scheduler {
	s := &Scheduler{store: store, log: log, tick: tick, timeout: 10 * time.Minute}
	s.jobs = []Job{
		{Name: "purge-expired-sessions", Spec: "@every 10m", Run: s.purgeExpired},
		{Name: "fill-customer-search", Spec: "@every 1m", Run: s.fillCustomerSearch},
	}
	return s
}

// Add registers another job before Start.
func (s *Scheduler) Add(j Job) { s.jobs = append(s.jobs, j) }

// OnStop registers f to run when Stop begins (a dispatcher drains: it
// finishes the batches in flight and claims no more).
func (s *Scheduler) OnStop(f func()) { s.onStop = append(s.onStop, f) }

// Start schedules every job and runs each once at once, so work that fell
// due while no worker ran is not left waiting for the first tick.
func (s *Scheduler) Start() error {
	l := cronLogger{s.log}
	s.cron = cron.New(cron.WithLocation(time.UTC), cron.WithChain(cron.Recover(l)))
	s.ctx, s.cancel = context.WithCancel(context.Background())
	// One wrapped run per job serves both cron and the run at once, so
	// that a tick finding that run still going skips (cron's own
	// SkipIfStillRunning saw only its ticks: a first tick draining a large
	// send ran beside the next one, a worker sending with twice its
	// SEND_CONCURRENCY).
	runs := make([]func(), len(s.jobs))
	for i, j := range s.jobs {
		runs[i] = s.wrap(j)
		if _, err := s.cron.AddFunc(j.Spec, runs[i]); err != nil {
			return err
		}
	}
	s.cron.Start()
	for _, run := range runs {
		// Counted before the goroutine starts, so a Stop right after Start
		// still waits for it.
		s.running.Add(1)
		go func() {
			defer s.running.Done()
			run()
		}()
	}
	s.log.Info("scheduler started", "tick", s.tick.String(), "jobs", len(s.jobs))
	return nil
}

func (s *Scheduler) wrap(j Job) func() {
	var busy atomic.Bool
	return func() {
		if !busy.CompareAndSwap(false, true) {
			s.log.Debug("job still running; tick skipped", "job", j.Name)
			return
		}
		defer busy.Store(false)
		s.running.Add(1)
		defer s.running.Done()
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("job panicked", "job", j.Name, "panic", r)
			}
		}()
		ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
		defer cancel()
		if err := j.Run(ctx); err != nil && s.ctx.Err() == nil {
			s.log.Error("job failed", "job", j.Name, "err", err)
		}
	}
}

// Stop stops scheduling and waits (up to the context's deadline) for the
// jobs that are running to finish.
func (s *Scheduler) Stop(ctx context.Context) {
	if s.cron == nil {
		return
	}
	for _, f := range s.onStop {
		f()
	}
	cronDone := s.cron.Stop()
	done := make(chan struct{})
	go func() {
		<-cronDone.Done()
		s.running.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("scheduler stop timed out; cancelling running jobs")
	}
	s.cancel()
	s.log.Info("scheduler stopped")
}

func (s *Scheduler) purgeExpired(ctx context.Context) error {
	n, err := s.store.PurgeExpiredKV(ctx)
	if n > 0 {
		s.log.Info("purged expired sessions and counters", "rows", n)
	}
	return err
}

// fillCustomerSearch fills the customer search table after a bulk load
// left it incomplete (campaigns/search.go).
func (s *Scheduler) fillCustomerSearch(ctx context.Context) error {
	t0 := time.Now()
	filled, err := s.store.FillCustomerSearch(ctx)
	if filled {
		s.log.Info("filled the customer search table and built its index", "took", time.Since(t0).Round(time.Millisecond))
	}
	return err
}

// cronLogger adapts slog to cron's logger.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "err", err)...)
}

package jobs

import (
	"log/slog"
	"net/mail"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/config"
)

// NewWorker builds the scheduler with every job a worker runs: the
// dispatcher that starts and sends campaigns, and housekeeping.
func NewWorker(store *campaigns.Store, cfg config.Config, mailer Mailer, log *slog.Logger) (*Scheduler, *Dispatcher, error) {
	from, err := mail.ParseAddress(cfg.MailFrom)
	if err != nil {
		return nil, nil, err
	}
	composer, err := NewComposer(cfg.BaseURL, *from, cfg.MailPostalAddress)
	if err != nil {
		return nil, nil, err
	}
	d := NewDispatcher(store, mailer, composer, DispatchConfig{BatchSize: cfg.SendBatchSize,
		Concurrency: cfg.SendConcurrency, Lease: cfg.SendLease, Lateness: cfg.SendLateness}, log)
	s := NewScheduler(store, cfg.SchedulerTick, log)
	s.Add(d.Job(cfg.SchedulerTick))
	s.OnStop(d.Drain)
	return s, d, nil
}

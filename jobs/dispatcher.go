package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rapport/rapport/campaigns"
)

// DispatchConfig tunes sending.
type DispatchConfig struct {
	BatchSize   int           // recipients per request (≤ 1000)
	Concurrency int           // batches in flight per worker process
	Lease       time.Duration // how long a claim is a worker's; longer than a send can take
	Lateness    time.Duration // a campaign later than this becomes missed
}

// Dispatcher starts due campaigns and sends their invitations, exactly
// once, through a Mailer. Several dispatchers (worker processes) may run on
// one database:
//
//  1. A due campaign moves scheduled → sending by a conditional UPDATE
//     that one process wins; it freezes the audience in that transaction.
//  2. A worker reserves a batch id at the mail service, then claims up to
//     BatchSize pending invitations under a lease, recording the batch id
//     and the time until which the batch can be recalled (SKIP LOCKED on
//     PostgreSQL; SQLite has one writer).
//  3. It sends the batch with send_at Lead ahead (SendGrid: 15 minutes),
//     and on acceptance marks the rows sent, only while its lease holds.
//  4. A lease that expires means the worker died or hung somewhere in 2-3.
//     Whoever finds it cancels the batch at the mail service (SendGrid
//     scheduled-sends cancel; the outbox deletes the batch's rows) and
//     returns the invitations to pending, to be sent in a new batch. If the
//     batch can no longer be recalled (no worker ran until its cancel
//     deadline), its invitations are settled as sent and flagged uncertain
//     on the campaign page: bounded, reported, never sent twice.
type Dispatcher struct {
	store    *campaigns.Store
	mailer   Mailer
	composer *Composer
	log      *slog.Logger
	cfg      DispatchConfig
	worker   string

	draining  atomic.Bool
	notBefore atomic.Int64 // unix nanos: a 429 holds every sender until then
	failures  atomic.Int64 // consecutive uncertain failures, for backoff
}

// NewDispatcher builds a dispatcher; worker names this process in leases.
func NewDispatcher(store *campaigns.Store, mailer Mailer, composer *Composer, cfg DispatchConfig, log *slog.Logger) *Dispatcher {
	if cfg.BatchSize <= 0 || cfg.BatchSize > MaxRecipients {
		cfg.BatchSize = MaxRecipients
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 2
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 2 * time.Minute
	}
	if cfg.Lateness <= 0 {
		cfg.Lateness = 24 * time.Hour
	}
	host, _ := os.Hostname()
	return &Dispatcher{store: store, mailer: mailer, composer: composer, log: log, cfg: cfg,
		worker: fmt.Sprintf("%s:%d:%s", host, os.Getpid(), campaigns.NewSecret()[:6])}
}

// Drain asks the dispatcher to stop after the batches in flight.
func (d *Dispatcher) Drain() { d.draining.Store(true) }

// Job is the dispatcher as a scheduler job run every tick.
func (d *Dispatcher) Job(tick time.Duration) Job {
	return Job{Name: "dispatch", Spec: "@every " + tick.String(), Run: d.Tick}
}

// Tick does everything that is due: missed campaigns, starts, recovery of
// expired leases, and sending.
func (d *Dispatcher) Tick(ctx context.Context) error {
	if n, err := d.store.MarkMissed(ctx, d.cfg.Lateness); err != nil {
		return err
	} else if n > 0 {
		d.log.Warn("campaigns missed their send time", "count", n)
	}
	due, err := d.store.DueCampaigns(ctx, d.mailer.Lead())
	if err != nil {
		return err
	}
	for _, c := range due {
		res, err := d.store.Start(ctx, c.ID)
		if err != nil {
			d.log.Error("start campaign", "campaign", c.ID, "err", err)
			continue
		}
		if res.Started {
			d.log.Info("campaign started", "campaign", c.ID, "invitations", res.Frozen, "holdout", res.Holdout)
		}
	}
	if err := d.Recover(ctx); err != nil {
		d.log.Error("recover expired batches", "err", err)
	}
	if err := d.RecallCancelled(ctx); err != nil {
		d.log.Error("recall cancelled campaigns' batches", "err", err)
	}
	sending, err := d.store.SendingCampaigns(ctx)
	if err != nil {
		return err
	}
	for i := range sending {
		if d.draining.Load() || ctx.Err() != nil {
			return nil
		}
		if err := d.sendCampaign(ctx, &sending[i]); err != nil {
			d.log.Error("send campaign", "campaign", sending[i].ID, "err", err)
		}
	}
	return d.sendFollowups(ctx)
}

// source is a queue of sends to drain: a campaign's invitations, or its
// follow-ups of one kind.
type source struct {
	queue campaigns.Queue
	claim func(ctx context.Context, o campaigns.ClaimOptions) ([]campaigns.Claim, error)
	rng   func(ctx context.Context) (lo, hi int64, err error) // the ids waiting; nil: always claim from the first
}

// sendFollowups queues due reminders and sends every due follow-up.
func (d *Dispatcher) sendFollowups(ctx context.Context) error {
	if n, err := d.store.EnqueueReminders(ctx); err != nil {
		return err
	} else if n > 0 {
		d.log.Info("reminders queued", "count", n)
	}
	if n, err := d.store.EnqueueSurveys(ctx); err != nil {
		return err
	} else if n > 0 {
		d.log.Info("surveys queued", "count", n)
	}
	due, err := d.store.DueFollowups(ctx)
	if err != nil {
		return err
	}
	for _, f := range due {
		if d.draining.Load() || ctx.Err() != nil {
			return nil
		}
		c, err := d.store.Campaign(ctx, f.CampaignID)
		if err != nil {
			return err
		}
		kind := f.Kind
		src := source{queue: campaigns.QueueFollowups, claim: func(ctx context.Context, o campaigns.ClaimOptions) ([]campaigns.Claim, error) {
			return d.store.ClaimFollowups(ctx, c.ID, kind, o)
		}}
		if err := d.drain(ctx, c, src); err != nil {
			d.log.Error("send follow-ups", "campaign", c.ID, "kind", kind, "err", err)
		}
	}
	return nil
}

// Recover cancels and requeues batches whose worker's lease expired. It
// takes each batch's rows over first: a worker that only seemed dead (a
// stall, a clock behind ours) and settles late then settles nothing, so
// no row is recorded sent for a batch this cancels.
func (d *Dispatcher) Recover(ctx context.Context) error {
	bs, err := d.store.ExpiredBatches(ctx)
	if err != nil {
		return err
	}
	for _, b := range bs {
		taken, err := d.store.TakeOverBatch(ctx, b.Queue, b.BatchID, d.worker, d.cfg.Lease)
		if err != nil {
			return err
		}
		if taken == 0 {
			continue // settled, or taken by another worker, since the list
		}
		if b.CancelBy != nil && time.Now().After(*b.CancelBy) {
			n, err := d.store.MarkUncertain(ctx, b.Queue, d.worker, b.BatchID)
			if err != nil {
				return err
			}
			d.log.Error("batch could no longer be recalled; marked uncertain", "campaign", b.CampaignID, "batch", b.BatchID, "invitations", n)
			continue
		}
		if err := d.mailer.Cancel(ctx, b.BatchID); err != nil {
			d.log.Warn("cancel expired batch failed; will retry", "campaign", b.CampaignID, "batch", b.BatchID, "err", err)
			if err := d.store.GiveBackBatch(ctx, b.Queue, d.worker, b.BatchID); err != nil {
				return err
			}
			continue
		}
		n, err := d.store.RequeueBatch(ctx, b.Queue, d.worker, b.BatchID)
		if err != nil {
			return err
		}
		d.log.Info("recalled an expired batch; its invitations will be sent again", "campaign", b.CampaignID, "batch", b.BatchID, "invitations", n)
	}
	return nil
}

// RecallCancelled recalls, at the mail service, the batches of cancelled
// campaigns that it still holds before their send time, and suppresses
// their rows. A recall that fails is tried again on the next tick until
// the batch's cancel deadline; after that its emails go and stay sent.
func (d *Dispatcher) RecallCancelled(ctx context.Context) error {
	bs, err := d.store.RecallableBatches(ctx, d.mailer.Lead()+d.cfg.Lease)
	if err != nil {
		return err
	}
	for _, b := range bs {
		if err := d.mailer.Cancel(ctx, b.BatchID); err != nil {
			d.log.Warn("recall of a cancelled campaign's batch failed; will retry", "campaign", b.CampaignID, "batch", b.BatchID, "err", err)
			continue
		}
		n, err := d.store.MarkRecalled(ctx, b.Queue, b.BatchID)
		if err != nil {
			return err
		}
		d.log.Info("recalled a cancelled campaign's batch before its send time", "campaign", b.CampaignID, "batch", b.BatchID, "emails", n)
	}
	return nil
}

// sendCampaign sends a campaign's invitations, then closes the run when
// nothing is left.
func (d *Dispatcher) sendCampaign(ctx context.Context, c *campaigns.Campaign) error {
	src := source{queue: campaigns.QueueInvitations, claim: func(ctx context.Context, o campaigns.ClaimOptions) ([]campaigns.Claim, error) {
		return d.store.Claim(ctx, c.ID, o)
	}, rng: func(ctx context.Context) (int64, int64, error) { return d.store.PendingRange(ctx, c.ID) }}
	err := d.drain(ctx, c, src)
	if _, ferr := d.store.FinishIfDone(ctx, c.ID); ferr != nil {
		return ferr
	}
	return err
}

// drain sends batches from src with Concurrency senders until nothing is
// left, the campaign is paused or cancelled, or the worker drains.
func (d *Dispatcher) drain(ctx context.Context, c *campaigns.Campaign, src source) error {
	var wg sync.WaitGroup
	errs := make([]error, d.cfg.Concurrency)
	var lo, hi int64
	if src.rng != nil {
		var err error
		if lo, hi, err = src.rng(ctx); err != nil {
			return err
		}
	}
	for i := 0; i < d.cfg.Concurrency; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// With more waiting than one batch per sender, each sender
			// starts claiming at its own random place among the ids waiting
			// and goes on from where its last batch ended, back to the first
			// at the end. Started together at the first id, every claim
			// stepped over the rows the other senders had just locked or
			// taken, visiting each (two workers, 100,000 emails: 16.4-16.9M
			// buffer reads in PostgreSQL, 15.3-15.4M spread out; one worker
			// 15.3M). A smaller send goes out in as few batches as before.
			var from int64
			if n := hi - lo + 1; hi > 0 && n > int64(d.cfg.BatchSize*d.cfg.Concurrency) {
				from = lo + rand.Int64N(n)
			}
			// Once a claim has found work, the sender reserves its next
			// batch id while it sends the current batch: one round trip to
			// the mail service fewer per batch in the sender's path (with a
			// service 100 ms away, a batch took two such waits). After a
			// failure or with nothing claimed, it reserves when it next needs
			// one, after any backoff.
			var next <-chan reservedID
			prefetch := func() { next = d.reserveBatchID(ctx) }
			for !d.draining.Load() && ctx.Err() == nil {
				if next == nil {
					prefetch()
				}
				var id reservedID
				select {
				case id = <-next:
				case <-ctx.Done():
					return
				}
				next = nil
				more, err := d.sendBatch(ctx, c, src, id, &from, prefetch)
				if err != nil {
					errs[i] = err
					return
				}
				if !more {
					return
				}
			}
		}(i)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// reservedID is a batch id reserved at the mail service, or why not.
type reservedID struct {
	id  string
	err error
}

// reserveBatchID asks the mail service for a batch id in the background.
// An id reserved and never used ties nothing together and costs nothing.
func (d *Dispatcher) reserveBatchID(ctx context.Context) <-chan reservedID {
	ch := make(chan reservedID, 1)
	go func() {
		id, err := d.mailer.NewBatchID(ctx)
		ch <- reservedID{id, err}
	}()
	return ch
}

// sendBatch claims and sends one batch under a reserved batch id, calling
// claimed once it has rows to send. It returns whether to go on.
func (d *Dispatcher) sendBatch(ctx context.Context, c *campaigns.Campaign, src source, reserved reservedID, from *int64, claimed func()) (bool, error) {
	if reserved.err != nil {
		d.backoff(ctx, reserved.err)
		return true, nil
	}
	if wait := time.Until(time.Unix(0, d.notBefore.Load())); wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return false, nil
		}
	}
	batchID := reserved.id
	sendAt := time.Now().UTC().Add(d.mailer.Lead())
	if c.SendAt != nil && c.SendAt.After(sendAt) {
		sendAt = c.SendAt.UTC()
	}
	cancelBy := sendAt.Add(-d.mailer.CancelWindow())
	if d.mailer.CancelWindow() < 0 {
		cancelBy = sendAt.Add(100 * 365 * 24 * time.Hour)
	}
	claims, err := src.claim(ctx, campaigns.ClaimOptions{Worker: d.worker, BatchID: batchID,
		Limit: d.cfg.BatchSize, Lease: d.cfg.Lease, CancelBy: cancelBy, From: *from})
	if err == nil && len(claims) == 0 && *from > 0 {
		*from = 0 // nothing left from there on: from the first
		return true, nil
	}
	if err != nil || len(claims) == 0 {
		return false, err
	}
	claimed()
	if *from > 0 { // going on from a place of its own, not yet back at the first
		if *from = claims[len(claims)-1].QueueID + 1; len(claims) < d.cfg.BatchSize {
			*from = 0 // the end came before a full batch: from the first next time
		}
	}
	ids := make([]int64, len(claims))
	for i, cl := range claims {
		ids[i] = cl.QueueID
	}
	// Consent again, at the last moment: who unsubscribed since the claim
	// gets nothing.
	gone, err := d.store.SuppressWithdrawn(ctx, src.queue, d.worker, batchID, claims)
	if err != nil {
		return false, err
	}
	if len(gone) > 0 {
		claims, ids = without(claims, gone)
		if len(claims) == 0 {
			return true, nil
		}
	}
	batch, err := d.composer.Batch(c, claims, batchID, sendAt)
	if err != nil {
		_ = d.store.Release(ctx, src.queue, d.worker, batchID, ids, err.Error())
		return false, err
	}
	msgID, err := d.mailer.Send(ctx, batch)
	var rl *RateLimitedError
	var rej *RejectedError
	var cfgErr *ConfigError
	switch {
	case err == nil:
		d.failures.Store(0)
		_, instant := d.mailer.(interface{ DeliversOnSend() })
		n, err := d.store.SettleSent(ctx, src.queue, d.worker, batchID, ids, msgID, instant)
		if err != nil {
			return false, err
		}
		if int(n) < len(ids) {
			d.log.Warn("lease lost before the batch was settled; recovery will recall it", "batch", batchID)
		}
		return true, nil
	case errors.As(err, &rl):
		d.notBefore.Store(time.Now().Add(rl.RetryAfter).UnixNano())
		d.log.Info("rate limited; waiting", "retry_after", rl.RetryAfter.String())
		return true, d.store.Release(ctx, src.queue, d.worker, batchID, ids, "rate limited; will retry")
	case errors.As(err, &rej):
		if len(rej.Recipients) == 0 {
			// The request as a whole is wrong (a setting, the content, its
			// size) and names no recipient: retrying repeats it, and none
			// of them is at fault. Their rows go back to pending, and the
			// campaign pauses until the coordinator fixes the cause and
			// resumes. A campaign that cannot pause (a sent one's
			// follow-ups) would have them retried on every tick, so there
			// they fail, with the reason, as any refused row does.
			paused, err := d.store.PauseWithNote(ctx, c.ID, "paused: "+rej.Error()+"; fix the cause, then resume")
			if err != nil {
				return false, err
			}
			if !paused {
				reasons := make(map[int64]string, len(ids))
				for _, id := range ids {
					reasons[id] = rej.Error()
				}
				return false, d.store.SettleFailed(ctx, src.queue, d.worker, batchID, reasons)
			}
			return false, d.store.Release(ctx, src.queue, d.worker, batchID, ids, rej.Error())
		}
		reasons := map[int64]string{}
		var retry []int64
		for i, id := range ids {
			if why, bad := rej.Recipients[i]; bad {
				reasons[id] = why
			} else {
				retry = append(retry, id)
			}
		}
		if err := d.store.SettleFailed(ctx, src.queue, d.worker, batchID, reasons); err != nil {
			return false, err
		}
		return true, d.store.Release(ctx, src.queue, d.worker, batchID, retry, "")
	case errors.As(err, &cfgErr):
		_ = d.store.Release(ctx, src.queue, d.worker, batchID, ids, cfgErr.Error())
		_, _ = d.store.PauseWithNote(ctx, c.ID, "paused: "+cfgErr.Error()+"; fix the SendGrid settings, then resume")
		return false, nil
	default:
		// Unknown outcome: recall the batch before anything is sent again.
		d.log.Warn("send outcome unknown; recalling the batch", "campaign", c.ID, "batch", batchID, "err", err)
		if cerr := d.mailer.Cancel(ctx, batchID); cerr == nil {
			_ = d.store.Release(ctx, src.queue, d.worker, batchID, ids, "recalled after: "+err.Error())
		} // else the lease expires and Recover cancels it later
		d.backoff(ctx, err)
		return true, nil
	}
}

// backoff sleeps after a failure: exponential with jitter, at most 30s.
func (d *Dispatcher) backoff(ctx context.Context, err error) {
	n := d.failures.Add(1)
	wait := time.Duration(min(int64(30*time.Second), int64(250*time.Millisecond)<<min(n, 7)))
	wait = wait/2 + time.Duration(rand.Int64N(int64(wait/2)+1))
	d.log.Info("mail service trouble; backing off", "wait", wait.String(), "err", err)
	select {
	case <-time.After(wait):
	case <-ctx.Done():
	}
}

func without(claims []campaigns.Claim, gone []int64) ([]campaigns.Claim, []int64) {
	drop := make(map[int64]bool, len(gone))
	for _, id := range gone {
		drop[id] = true
	}
	var out []campaigns.Claim
	var ids []int64
	for _, c := range claims {
		if !drop[c.QueueID] {
			out = append(out, c)
			ids = append(ids, c.QueueID)
		}
	}
	return out, ids
}

package campaigns

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Group commit, in the application. Writes to one event that each took a
// transaction of their own (and the event's or a guest's row lock, held
// until the commit is on disk) instead wait in a queue per event; one
// goroutine per event and process takes everything waiting, settles it in
// one transaction and answers each waiter. RSVP answers (rsvp_settle.go)
// and check-ins (checkin.go) go through it.

// maxBatch bounds one settling transaction.
const maxBatch = 500

// batches is the queues of one kind of write, per event.
type batches[Req, Out any] struct {
	what   string // named in errors: "RSVP answers"
	mu     sync.Mutex
	queued map[int64][]*waiter[Req, Out] // an event's key is present while its settler runs
}

type waiter[Req, Out any] struct {
	req  Req
	done chan batchResult[Out]
}

type batchResult[Out any] struct {
	out Out
	err error
}

// settleFunc settles one event's batch in order; it returns one Out per
// request, or an error that fails the whole batch.
type settleFunc[Req, Out any] func(ctx context.Context, eventID int64, batch []Req) ([]Out, error)

// submit queues req and waits for its batch. A caller that gives up (its
// request timed out) leaves the request to be settled.
func (b *batches[Req, Out]) submit(ctx context.Context, eventID int64, req Req, settle settleFunc[Req, Out]) (Out, error) {
	w := &waiter[Req, Out]{req: req, done: make(chan batchResult[Out], 1)}
	b.mu.Lock()
	if b.queued == nil {
		b.queued = map[int64][]*waiter[Req, Out]{}
	}
	waiting, running := b.queued[eventID]
	b.queued[eventID] = append(waiting, w)
	b.mu.Unlock()
	if !running {
		go b.run(context.WithoutCancel(ctx), eventID, settle)
	}
	WaitingForBatch(ctx)
	select {
	case r := <-w.done:
		return r.out, r.err
	case <-ctx.Done():
		var zero Out
		return zero, ctx.Err()
	}
}

// run settles an event's queue, batch after batch, until none are left.
func (b *batches[Req, Out]) run(ctx context.Context, eventID int64, settle settleFunc[Req, Out]) {
	for {
		b.mu.Lock()
		batch := b.queued[eventID]
		if len(batch) == 0 {
			delete(b.queued, eventID)
			b.mu.Unlock()
			return
		}
		if len(batch) > maxBatch {
			b.queued[eventID] = batch[maxBatch:]
			batch = batch[:maxBatch]
		} else {
			b.queued[eventID] = nil
		}
		b.mu.Unlock()
		outs, err := b.settleOne(ctx, eventID, batch, settle)
		for i, w := range batch {
			if err != nil {
				w.done <- batchResult[Out]{err: err}
			} else {
				w.done <- batchResult[Out]{out: outs[i]}
			}
		}
	}
}

// settleOne runs settle with a deadline, and turns a panic into the
// batch's error: the settler must go on, or the event's later requests
// would wait for it forever.
func (b *batches[Req, Out]) settleOne(ctx context.Context, eventID int64, batch []*waiter[Req, Out], settle settleFunc[Req, Out]) (outs []Out, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			outs, err = nil, fmt.Errorf("settling %s for campaign %d: %v", b.what, eventID, p)
		}
	}()
	reqs := make([]Req, len(batch))
	for i, w := range batch {
		reqs[i] = w.req
	}
	outs, err = settle(ctx, eventID, reqs)
	// A deadlock with another process's work rolled the batch back whole;
	// settling reads everything afresh, so it goes once more rather than
	// failing every request in it.
	if isDeadlock(err) {
		outs, err = settle(ctx, eventID, reqs)
	}
	if err == nil && len(outs) != len(reqs) {
		err = fmt.Errorf("settling %s for campaign %d: %d results for %d requests", b.what, eventID, len(outs), len(reqs))
	}
	return outs, err
}

type waitHookKey struct{}

// WithWaitHook returns ctx carrying f, which the store calls when the
// request starts to wait for a batch it queued work in: it holds no
// database connection while it waits, so the web layer's admission queue
// can let another request in.
func WithWaitHook(ctx context.Context, f func()) context.Context {
	return context.WithValue(ctx, waitHookKey{}, f)
}

// WaitingForBatch calls ctx's wait hook, if it has one.
func WaitingForBatch(ctx context.Context) {
	if f, ok := ctx.Value(waitHookKey{}).(func()); ok {
		f()
	}
}

// isDeadlock says PostgreSQL broke a deadlock (or a serialization
// conflict) by aborting this transaction.
func isDeadlock(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

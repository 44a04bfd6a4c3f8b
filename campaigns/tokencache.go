package campaigns

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Every API call starts by finding its token, and that read was a round
// trip of its own: a third of a check-in's time at a busy door (side by
// side, 5,659-6,645 -> 8,383-8,735 check-ins/s with tokens kept in
// memory). On PostgreSQL a web process keeps the tokens it has found, for
// as long as it is listening for changes to them: a trigger (migration
// 00012) notifies every process when a token is revoked, changed or
// deleted, however that happens, and each one forgets what it kept. While
// the listening connection is down (starting, PostgreSQL restarting, or
// stalled: see the heartbeat) nothing is kept and every call reads its
// token; a kept token is read again after tokenKeep all the same. SQLite
// keeps nothing: another process may change a token in the same file.

// tokenChannel is the channel migration 00012's trigger notifies.
const tokenChannel = "rapport_api_tokens"

// listenerName names the listening connection in pg_stat_activity.
const listenerName = "rapport token listener"

// tokenCache is the tokens one process has found.
type tokenCache struct {
	start sync.Once
	stop  context.CancelFunc
	done  chan struct{}

	heartbeat time.Duration // tokenHeartbeat, shorter in tests

	mu     sync.Mutex
	live   bool   // listening: what is kept is current
	gen    uint64 // bumped whenever what is kept may be stale
	byHash map[string]keptToken
}

type keptToken struct {
	t  APIToken
	at time.Time
}

// tokenKeep is how long a token is kept at most, whatever is heard: each
// token in use is read again this often.
const tokenKeep = 15 * time.Second

// get returns a kept token and the generation to store a read under. A
// kept token is shared: its pointer fields must not be written.
func (c *tokenCache) get(hash string) (APIToken, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.byHash[hash]
	return k.t, ok && c.live && time.Since(k.at) < tokenKeep, c.gen // monotonic: a clock step cannot stretch it
}

// put keeps t, unless something changed since gen was read: a read that
// raced a revocation must not outlive it.
func (c *tokenCache) put(hash string, t APIToken, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live && c.gen == gen {
		if c.byHash == nil {
			c.byHash = map[string]keptToken{}
		}
		c.byHash[hash] = keptToken{t, time.Now()}
	}
}

// forget drops everything kept.
func (c *tokenCache) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.byHash)
}

// setLive forgets everything kept and says whether to keep again.
func (c *tokenCache) setLive(live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live = live
	c.gen++
	clear(c.byHash)
}

// listenForTokens starts, once per store, the connection that hears of
// token changes (PostgreSQL only).
func (s *Store) listenForTokens() {
	c := &s.tokens
	c.start.Do(func() {
		if s.dsn == "" {
			return
		}
		ctx, stop := context.WithCancel(context.Background())
		c.stop, c.done = stop, make(chan struct{})
		go func() {
			defer close(c.done)
			for wait := time.Duration(0); ctx.Err() == nil; {
				heard, err := s.listen(ctx)
				c.setLive(false)
				if ctx.Err() != nil {
					return
				}
				// Down: every call reads its token meanwhile.
				if heard {
					wait = 0
				}
				wait = min(max(2*wait, 100*time.Millisecond), 5*time.Second)
				slog.Warn("API tokens are read per call until the database is back", "error", err, "retry_in", wait)
				select {
				case <-ctx.Done():
				case <-time.After(wait):
				}
			}
		}()
	})
}

// listen listens until the connection fails or ctx ends; heard says it
// got as far as listening.
func (s *Store) listen(ctx context.Context) (heard bool, err error) {
	cfg, err := pgx.ParseConfig(s.dsn)
	if err != nil {
		return false, err
	}
	cfg.RuntimeParams["application_name"] = listenerName
	// A connection that died without a word is noticed by the kernel too,
	// not after TCP's two hours (the heartbeat below is quicker).
	cfg.DialFunc = (&net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second,
		Interval: 5 * time.Second, Count: 3}}).DialContext
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	defer s.tokens.setLive(false) // first: nothing is kept from the moment this fails
	// The trigger must be there and on: a trigger disabled (or a pooler
	// that drops LISTEN, caught by the heartbeat) would leave revocations
	// unheard.
	var enabled string
	if err := conn.QueryRow(ctx, `SELECT tgenabled FROM pg_trigger
		WHERE tgrelid = 'api_tokens'::regclass AND tgname = 'api_tokens_changed'`).Scan(&enabled); err != nil {
		return false, fmt.Errorf("the api_tokens trigger (migration 00012): %w", err)
	}
	if enabled != "O" && enabled != "A" {
		return false, errors.New("the api_tokens_changed trigger is disabled")
	}
	if _, err := conn.Exec(ctx, "LISTEN "+tokenChannel); err != nil {
		return false, err
	}
	// From here on a change is heard: start keeping.
	s.tokens.setLive(true)
	// A connection can also stall without failing (a proxy that answers
	// for a server gone quiet): after a quiet spell the listener notifies
	// itself, and the connection is given up if that is not heard back.
	self := conn.PgConn().PID()
	pinged := false
	beat := cmp.Or(s.tokens.heartbeat, tokenHeartbeat)
	for {
		wctx, cancel := context.WithTimeout(ctx, beat)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return true, ctx.Err()
		case err == nil && n.Payload == pingPayload:
			if n.PID == self {
				pinged = false
			}
		case err == nil:
			s.tokens.forget()
		case !errors.Is(err, context.DeadlineExceeded):
			return true, err
		case pinged:
			return true, errors.New("the listening connection stopped answering")
		default:
			pctx, cancel := context.WithTimeout(ctx, beat)
			_, err := conn.Exec(pctx, "SELECT pg_notify($1, $2)", tokenChannel, pingPayload)
			cancel()
			if err != nil {
				return true, err
			}
			pinged = true
		}
	}
}

// tokenHeartbeat is the quiet spell after which the listener checks its
// connection; a stalled one is given up within twice this.
const tokenHeartbeat = 5 * time.Second

// pingPayload marks the listeners' own notifications, which change nothing.
const pingPayload = "ping"

// tokensLive says whether this process keeps tokens now, for tests.
func (s *Store) tokensLive() bool {
	s.tokens.mu.Lock()
	defer s.tokens.mu.Unlock()
	return s.tokens.live
}

// stopListening ends the listening connection, for Close.
func (s *Store) stopListening() {
	c := &s.tokens
	c.start.Do(func() {}) // none may start after this
	if c.stop != nil {
		c.stop()
		<-c.done
	}
}

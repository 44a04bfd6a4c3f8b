package campaigns_test

import (
	"context"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
	"github.com/rapport/rapport/config"
)

// A revoked API token is refused by every process, however it was revoked,
// though web processes keep the tokens they found (tokencache.go).
func TestRevokedTokenIsRefusedByEveryProcess(t *testing.T) {
	for _, d := range campaignstest.Available(t) {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			u := campaignstest.URL(t, d)
			open := func() *campaigns.Store {
				s, err := campaigns.Open(ctx, u)
				require.NoError(t, err)
				t.Cleanup(func() { _ = s.Close() })
				return s
			}
			admin, web := open(), open() // two processes
			_, err := admin.Migrate(ctx)
			require.NoError(t, err)
			refused := func(plain string) bool {
				_, err := web.TokenBySecret(ctx, plain)
				return campaigns.ErrorCode(err) == campaigns.EUNAUTHORIZED
			}
			// kept waits until web finds plain without reading it (PostgreSQL).
			kept := func(plain string) {
				t.Helper()
				if web.Dialect() != config.Postgres {
					return
				}
				require.Eventually(t, func() bool {
					if _, err := web.TokenBySecret(ctx, plain); err != nil {
						return false
					}
					before := web.TokenReads()
					_, err := web.TokenBySecret(ctx, plain)
					return err == nil && web.TokenReads() == before
				}, 10*time.Second, 10*time.Millisecond, "the token is kept")
			}

			plain, tok, err := admin.CreateToken(ctx, "door phone", campaigns.RoleRep, nil)
			require.NoError(t, err)
			kept(plain)
			require.NoError(t, admin.RevokeToken(ctx, tok.ID))
			require.Eventually(t, func() bool { return refused(plain) }, 10*time.Second, 10*time.Millisecond,
				"revoked in another process")
			require.True(t, refused(plain), "and stays refused")

			byHand, tok2, err := admin.CreateToken(ctx, "script", campaigns.RoleCoordinator, nil)
			require.NoError(t, err)
			kept(byHand)
			require.NoError(t, admin.DB().Exec("UPDATE api_tokens SET revoked_at = ? WHERE id = ?", time.Now(), tok2.ID).Error)
			require.Eventually(t, func() bool { return refused(byHand) }, 10*time.Second, 10*time.Millisecond,
				"revoked by hand in SQL")

			here, tok3, err := admin.CreateToken(ctx, "finance export", campaigns.RoleFinance, nil)
			require.NoError(t, err)
			kept(here)
			require.NoError(t, web.RevokeToken(ctx, tok3.ID))
			require.True(t, refused(here), "revoked in this process: at once")

			if d != campaignstest.Postgres {
				return
			}
			// The listening connection dies (PostgreSQL restarting): until it is
			// back, tokens are read per call, and a revocation meanwhile counts.
			lost, tok4, err := admin.CreateToken(ctx, "lost", campaigns.RoleRep, nil)
			require.NoError(t, err)
			kept(lost)
			require.NoError(t, admin.DB().Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE application_name = ? AND datname = current_database()`, campaigns.ListenerName).Error)
			require.NoError(t, admin.DB().Exec("UPDATE api_tokens SET revoked_at = ? WHERE id = ?", time.Now(), tok4.ID).Error)
			require.Eventually(t, func() bool { return refused(lost) }, 10*time.Second, 10*time.Millisecond)
			after, _, err := admin.CreateToken(ctx, "after", campaigns.RoleRep, nil)
			require.NoError(t, err)
			kept(after) // listening again
		})
	}
}

// A listening connection that stalls without failing (a proxy answering
// for a server gone quiet) is given up by the heartbeat: from then on the
// process keeps no token, so a revocation it cannot hear still counts.
func TestStalledTokenListenerStopsKeeping(t *testing.T) {
	if os.Getenv("TEST_DATABASE_URL") == "" {
		t.Skip("PostgreSQL only")
	}
	ctx := context.Background()
	u := campaignstest.URL(t, campaignstest.Postgres)
	pu, err := url.Parse(u)
	require.NoError(t, err)
	p := newFreezer(t, pu.Host)
	pu.Host = p.addr
	web, err := campaigns.Open(ctx, pu.String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = web.Close() })
	_, err = web.Migrate(ctx)
	require.NoError(t, err)
	web.SetTokenHeartbeat(100 * time.Millisecond)
	plain, _, err := web.CreateToken(ctx, "door phone", campaigns.RoleRep, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := web.TokenBySecret(ctx, plain)
		return err == nil && web.TokensLive()
	}, 10*time.Second, 10*time.Millisecond, "keeping tokens")
	time.Sleep(500 * time.Millisecond) // heartbeats come and go while it answers
	require.True(t, web.TokensLive())
	p.freeze()
	require.Eventually(t, func() bool { return !web.TokensLive() }, 10*time.Second, 10*time.Millisecond,
		"a stalled listener is given up")
}

// freezer forwards TCP connections to a server until frozen; then it holds
// them open and passes nothing either way.
type freezer struct {
	addr   string
	mu     sync.Mutex
	frozen bool
}

func newFreezer(t *testing.T, target string) *freezer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &freezer{addr: l.Addr().String()}
	var conns []net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				_ = in.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			go f.pipe(in, out)
			go f.pipe(out, in)
		}
	}()
	return f
}

func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frozen = true
}

func (f *freezer) pipe(from, to net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if err != nil {
			return
		}
		f.mu.Lock()
		frozen := f.frozen
		f.mu.Unlock()
		if frozen {
			continue // swallowed: the other side hears nothing
		}
		if _, err := to.Write(buf[:n]); err != nil {
			return
		}
	}
}

// With the trigger disabled nobody would hear of a revocation: nothing is
// kept, every call reads its token.
func TestDisabledTokenTriggerKeepsNothing(t *testing.T) {
	if os.Getenv("TEST_DATABASE_URL") == "" {
		t.Skip("PostgreSQL only")
	}
	ctx := context.Background()
	s := campaignstest.Open(t, campaignstest.Postgres)
	require.NoError(t, s.DB().Exec("ALTER TABLE api_tokens DISABLE TRIGGER api_tokens_changed").Error)
	plain, _, err := s.CreateToken(ctx, "script", campaigns.RoleCoordinator, nil)
	require.NoError(t, err)
	for range 20 {
		before := s.TokenReads()
		_, err := s.TokenBySecret(ctx, plain)
		require.NoError(t, err)
		require.Equal(t, before+1, s.TokenReads(), "read, not kept")
		time.Sleep(20 * time.Millisecond)
	}
	require.False(t, s.TokensLive())
}

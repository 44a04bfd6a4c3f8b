package campaigns_test

import (
	"context"
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
					_, err := web.TokenBySecret(ctx, plain)
					require.NoError(t, err)
					before := web.TokenReads()
					_, err = web.TokenBySecret(ctx, plain)
					require.NoError(t, err)
					return web.TokenReads() == before
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
			require.NoError(t, admin.DB().Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ?",
				campaigns.ListenerName).Error)
			require.NoError(t, admin.DB().Exec("UPDATE api_tokens SET revoked_at = ? WHERE id = ?", time.Now(), tok4.ID).Error)
			require.Eventually(t, func() bool { return refused(lost) }, 10*time.Second, 10*time.Millisecond)
			after, _, err := admin.CreateToken(ctx, "after", campaigns.RoleRep, nil)
			require.NoError(t, err)
			kept(after) // listening again
		})
	}
}

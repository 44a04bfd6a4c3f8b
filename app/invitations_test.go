package app_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
)

// GET /api/v1/campaigns/:id/invitations gives each invitation's status
// from the contract's set (pending|sent|delivered|failed|suppressed). An
// invitation a worker holds mid-send ("sending" inside) is still pending
// to the outside.
func TestInvitationsAPIStatusIsTheContractsSet(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		e := setup(t, dialect)
		ctx := context.Background()
		c := e.newDraft()
		_, err := e.store.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true})
		require.NoError(t, err)
		_, err = e.store.Start(ctx, c.ID)
		require.NoError(t, err)
		claim := func(batch string) campaigns.Claim {
			t.Helper()
			cl, err := e.store.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "w", BatchID: batch, Limit: 1,
				Lease: time.Hour, CancelBy: time.Now().Add(time.Hour)})
			require.NoError(t, err)
			require.Len(t, cl, 1)
			return cl[0]
		}
		sent := claim("a")
		_, err = e.store.SettleSent(ctx, campaigns.QueueInvitations, "w", "a", []int64{sent.ID}, "m", false)
		require.NoError(t, err)
		held := claim("b") // leased to a worker, not sent yet
		var inside string
		require.NoError(t, e.store.DB().Raw("SELECT status FROM invitations WHERE id = ?", held.ID).Scan(&inside).Error)
		require.Equal(t, string(campaigns.InvSending), inside)

		r := e.api("GET", fmt.Sprintf("/api/v1/campaigns/%d/invitations", c.ID), e.tokens[campaigns.RoleCoordinator], nil)
		require.Equal(t, http.StatusOK, r.Status, r.Body)
		var page struct {
			Items []struct {
				ID     int64  `json:"id"`
				Status string `json:"status"`
			} `json:"items"`
		}
		r.Decode(t, &page)
		require.NotEmpty(t, page.Items)
		got := map[int64]string{}
		for _, it := range page.Items {
			require.Contains(t, []string{"pending", "sent", "delivered", "failed", "suppressed"}, it.Status, "invitation %d", it.ID)
			got[it.ID] = it.Status
		}
		require.Equal(t, "sent", got[sent.ID])
		require.Equal(t, "pending", got[held.ID], "an invitation mid-send is pending to the outside")
	})
}

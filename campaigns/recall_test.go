package campaigns_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
)

// A recalled batch never reached anyone: its customers' last contact goes
// back to the last email Rapport did send them, or to none, so the same
// campaign fixed and sent again, or the next one's "not contacted within"
// filter, does not pass them over for an email they never got.
func TestRecalledSendIsNotAContact(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		ids := addCustomers(t, s, 3, "recall-")
		clock := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Second)
		s.SetClock(func() time.Time { return clock })
		// send claims the campaign's invitations as batch and settles those
		// of the given customers as handed over.
		send := func(c *campaigns.Campaign, batch string, to []int64) int {
			cl, err := s.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "w", BatchID: batch, Limit: 1000,
				Lease: time.Minute, CancelBy: clock.Add(time.Hour)})
			require.NoError(t, err)
			var inv []int64
			for _, x := range cl {
				for _, id := range to {
					if x.CustomerID == id {
						inv = append(inv, x.ID)
					}
				}
			}
			n, err := s.SettleSent(ctx, campaigns.QueueInvitations, "w", batch, inv, "m-"+batch, false)
			require.NoError(t, err)
			return int(n)
		}
		first := clock
		require.Equal(t, 1, send(startCampaign(t, s, eventInput("Earlier")), "b1", ids[:1]))

		clock = clock.Add(time.Hour)
		c := startCampaign(t, s, eventInput("Cancelled"))
		require.Equal(t, 3, send(c, "b2", ids))
		contact := func(id int64) *time.Time {
			cu, err := s.Customer(ctx, id)
			require.NoError(t, err)
			return cu.LastContactedAt
		}
		require.WithinDuration(t, clock, *contact(ids[1]), time.Second, "the hand-over counts as a contact")

		clock = clock.Add(time.Minute)
		_, err := s.Cancel(ctx, c.ID)
		require.NoError(t, err, "cancelled while SendGrid still holds the batch")
		n, err := s.MarkRecalled(ctx, campaigns.QueueInvitations, "b2")
		require.NoError(t, err)
		require.EqualValues(t, 3, n)

		require.NotNil(t, contact(ids[0]))
		require.WithinDuration(t, first, *contact(ids[0]), time.Second, "back to the earlier campaign's email")
		require.Nil(t, contact(ids[1]), "never contacted after all")
		require.Nil(t, contact(ids[2]))
		// Nothing else moved: a recall with nothing left to recall.
		n, err = s.MarkRecalled(ctx, campaigns.QueueInvitations, "b2")
		require.NoError(t, err)
		require.Zero(t, n)
		require.WithinDuration(t, first, *contact(ids[0]), time.Second)
	})
}

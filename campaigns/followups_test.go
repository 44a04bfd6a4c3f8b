package campaigns_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
)

// An event with reminders 48 hours and 2 hours before. A guest who says
// yes early gets both, each at its time; one who says yes between them
// gets the 48-hour one when they answer and the 2-hour one at its time;
// one who says yes after both times have passed gets one reminder, not
// two back to back.
func TestLateYesGetsOneReminder(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		addCustomers(t, s, 3, "ly")
		in := eventInput("Late yes")
		in.Reminders = &[]string{"2h", "48h"}
		c := startCampaign(t, s, in)
		cl, err := s.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "A", BatchID: "ly", Limit: 10, Lease: time.Minute, CancelBy: time.Now().Add(time.Hour)})
		require.NoError(t, err)
		require.Len(t, cl, 3)
		_, err = s.SettleSent(ctx, campaigns.QueueInvitations, "A", "ly", idsOf(cl), "m", false)
		require.NoError(t, err)
		c, err = s.Campaign(ctx, c.ID)
		require.NoError(t, err)
		starts := *c.StartsAt
		yes := func(i int) {
			t.Helper()
			require.NoError(t, s.DB().Exec("UPDATE invitations SET rsvp = 'yes' WHERE id = ?", cl[i].ID).Error)
		}
		at := func(before time.Duration) {
			t.Helper()
			s.SetClock(func() time.Time { return starts.Add(-before) })
			_, err := s.EnqueueReminders(ctx)
			require.NoError(t, err)
		}

		yes(0)
		at(72 * time.Hour) // no reminder's time yet
		at(47 * time.Hour)
		yes(1)
		at(24 * time.Hour)
		at(2 * time.Hour)
		yes(2)
		at(time.Hour)
		at(time.Hour)

		var rows []campaigns.Followup
		require.NoError(t, s.DB().Where("campaign_id = ? AND kind = ?", c.ID, campaigns.FollowReminder).Order("id").Find(&rows).Error)
		got := map[int64][]string{}
		for _, r := range rows {
			got[r.InvitationID] = append(got[r.InvitationID], r.DedupeKey)
		}
		require.Equal(t, map[int64][]string{
			cl[0].ID: {"reminder:48h0m0s", "reminder:2h0m0s"},
			cl[1].ID: {"reminder:48h0m0s", "reminder:2h0m0s"},
			cl[2].ID: {"reminder:2h0m0s"},
		}, got)
	})
}

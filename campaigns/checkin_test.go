package campaigns_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
)

// Two reps adding the same new walk-in at once (or a double tap) make one
// customer, one invitation and one attendance: the first tap is the
// check-in (201), the others find it (200). The second insert of the
// customer or the invitation used to fail on their unique keys (a 500).
func TestConcurrentWalkInChecksInOnce(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		c, _ := sentEvent(t, s, 1, 5, 0)
		for round := 0; round < 10; round++ {
			email := fmt.Sprintf("walkin%d@example.com", round)
			res := make([]*campaigns.CheckinResult, 4)
			errs := make([]error, len(res))
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range res {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					<-start
					res[i], errs[i] = s.CheckIn(ctx, c.ID, campaigns.CheckinTarget{Name: "Walk In", Email: email}, nil)
				}(i)
			}
			close(start)
			wg.Wait()
			created := 0
			for i, err := range errs {
				require.NoError(t, err, "round %d tap %d", round, i)
				require.Equal(t, res[0].InvitationID, res[i].InvitationID, "round %d tap %d", round, i)
				require.Equal(t, res[0].CustomerID, res[i].CustomerID, "round %d tap %d", round, i)
				require.True(t, res[i].WalkIn)
				if res[i].Created {
					created++
				}
			}
			require.Equal(t, 1, created, "round %d: one tap checks in, the others find it", round)
			var customers, created0 int64
			require.NoError(t, s.DB().Raw(`SELECT count(*) FROM customers WHERE email = ?`, email).Scan(&customers).Error)
			require.EqualValues(t, 1, customers)
			require.NoError(t, s.DB().Raw(`SELECT count(*) FROM level_ledger WHERE customer_id = ? AND rule = 'walk_in'`,
				res[0].CustomerID).Scan(&created0).Error)
			require.EqualValues(t, 1, created0, "one 'created' row in the ledger")
		}
	})
}

package campaigns_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
)

func TestRelationshipAudit(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		ids := addCustomers(t, s, 5, fmt.Sprintf("au%d-", time.Now().UnixNano()%100000))
		// Two loyal customers: one contacted last week, one never.
		for _, id := range ids[:2] {
			_, err := s.SetLevel(ctx, id, campaigns.LevelGoodCustomer, "loyal", nil)
			require.NoError(t, err)
		}
		require.NoError(t, s.DB().Exec("INSERT INTO customer_contacts (customer_id, last_contacted_at) VALUES (?, ?)", ids[0], time.Now().UTC().Add(-7*24*time.Hour)).Error)
		a, err := s.RelationshipAudit(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 5, a.Total)
		require.EqualValues(t, 3, a.Levels[0].Customers, "three still at Record")
		require.EqualValues(t, 2, a.Levels[5].Customers)
		require.EqualValues(t, 2, a.Levels[5].PromotedInto, "moved up this quarter")
		require.EqualValues(t, 1, a.Levels[5].NotContacted90)
		require.InDelta(t, 0.5, a.Levels[5].NotContactedPart, 1e-9)
		require.EqualValues(t, 1, a.ForgottenTotal)
		require.Equal(t, ids[1], a.Forgotten[0].ID, "the loyal customer nobody called")
	})
}

// A demo seed (History) has past contacts for about a third of its
// customers; a plain seed is as if just imported: never contacted.
func TestSeedHistoryRecordsContacts(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		contacted := func(tag string) int64 {
			var n int64
			require.NoError(t, s.DB().Table("customer_contacts cc").Joins("JOIN customers c ON c.id = cc.customer_id").
				Where("c.email LIKE ?", "%@"+tag+".example.com").Count(&n).Error)
			return n
		}
		tag := fmt.Sprintf("hist%d", time.Now().UnixNano()%1_000_000)
		_, err := s.Seed(ctx, campaigns.SeedOptions{Customers: 300, Seed: 5, History: true, Tag: tag})
		require.NoError(t, err)
		require.InDelta(t, 100, contacted(tag), 40)
		_, err = s.Seed(ctx, campaigns.SeedOptions{Customers: 300, Seed: 5, Tag: tag + "p"})
		require.NoError(t, err)
		require.Zero(t, contacted(tag+"p"))
	})
}

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

// The forgotten list: loyal customers who may be written to and whom
// nobody contacted in 60 days. Never contacted first, biggest spenders
// first; then the longest since a contact.
func TestAuditListsTheForgottenInOrder(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		ids := addCustomers(t, s, 60, fmt.Sprintf("fg%d-", time.Now().UnixNano()%100000))
		now := time.Now().UTC()
		for i, id := range ids {
			level := campaigns.LevelGoodCustomer
			if i >= 57 {
				level = campaigns.Level(5) // rows 57-59: not loyal
			}
			_, err := s.SetLevel(ctx, id, level, "set up", nil)
			require.NoError(t, err)
			// Spends all differ, and run against id order.
			require.NoError(t, s.DB().Exec("UPDATE customers SET annual_spend_cents = ? WHERE id = ?", 1_000_000-i*1000, id).Error)
		}
		contact := func(id int64, daysAgo int) {
			require.NoError(t, s.DB().Exec("INSERT INTO customer_contacts (customer_id, last_contacted_at) VALUES (?, ?)",
				id, now.Add(-time.Duration(daysAgo)*24*time.Hour)).Error)
		}
		// Rows 0-44 never contacted. Rows 45-52 last contacted 70-77 days
		// ago, the higher the row the longer ago; 53-54 ten days ago.
		for i := 45; i <= 52; i++ {
			contact(ids[i], 70+(i-45))
		}
		contact(ids[53], 10)
		contact(ids[54], 10)
		// Row 55 never contacted but unsubscribed; row 56 never contacted.
		require.NoError(t, s.DB().Exec("UPDATE customers SET consent_state = 'unsubscribed' WHERE id = ?", ids[55]).Error)

		a, err := s.RelationshipAudit(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 46+8, a.ForgottenTotal, "rows 0-44 and 56 never contacted, 45-52 not lately")
		require.Len(t, a.Forgotten, 50)
		var got []int64
		for _, c := range a.Forgotten {
			got = append(got, c.ID)
		}
		want := append([]int64{}, ids[:45]...) // the biggest spenders first
		want = append(want, ids[56])
		want = append(want, ids[52], ids[51], ids[50], ids[49]) // the longest since a contact first
		require.Equal(t, want, got)
		require.Nil(t, a.Forgotten[0].LastContactedAt)
		require.NotNil(t, a.Forgotten[49].LastContactedAt)
	})
}

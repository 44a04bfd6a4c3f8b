package campaigns_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

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

// A holdout customer who turns up at the door is checked in (a real guest),
// whether found by customer id or added as a walk-in with their email, and
// leaves the control group: ROI counts them with the attendees the door
// counted, the holdout no longer holds a promoted attendee, nothing is
// sent to them, and the door's search finds them (to undo a mistaken tap).
func TestHoldoutGuestAtTheDoorLeavesTheHoldout(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		addCustomers(t, s, 10, fmt.Sprintf("hw%d-", time.Now().UnixNano()%100000))
		in := eventInput("Held")
		in.HoldoutPercent = 50
		c := startCampaign(t, s, in)
		var held []campaigns.Invitation
		require.NoError(t, s.DB().Where("campaign_id = ? AND holdout", c.ID).Order("id").Find(&held).Error)
		require.GreaterOrEqual(t, len(held), 2)
		require.NoError(t, s.DB().Table("campaigns").Where("id = ?", c.ID).Update("status", campaigns.StatusSent).Error)
		before, err := s.CampaignROI(ctx, c.ID)
		require.NoError(t, err)

		byID, err := s.CheckIn(ctx, c.ID, campaigns.CheckinTarget{CustomerID: held[0].CustomerID}, nil)
		require.NoError(t, err)
		require.True(t, byID.Created)
		require.True(t, byID.WalkIn, "came without an invitation")
		cu, err := s.Customer(ctx, held[1].CustomerID)
		require.NoError(t, err)
		walkIn, err := s.CheckIn(ctx, c.ID, campaigns.CheckinTarget{Name: cu.Name, Email: cu.Email}, nil)
		require.NoError(t, err)
		require.Equal(t, held[1].ID, walkIn.InvitationID, "their own invitation, not a second one")
		require.True(t, walkIn.Created)

		for _, h := range held[:2] {
			var got campaigns.Invitation
			require.NoError(t, s.DB().First(&got, h.ID).Error)
			require.True(t, got.Attended)
			require.False(t, got.Holdout, "a guest who attended is no longer a control")
			require.True(t, got.WalkIn)
			require.Equal(t, campaigns.InvSuppressed, got.Status, "never to be sent")
			require.Contains(t, got.StatusReason, "holdout")
		}
		found, err := s.SearchInvitees(ctx, c.ID, cu.Email, 5)
		require.NoError(t, err)
		require.Len(t, found, 1, "the door's search finds them")
		roi, err := s.CampaignROI(ctx, c.ID)
		require.NoError(t, err)
		require.EqualValues(t, 2, roi.Attendees)
		require.Equal(t, before.Incremental.Holdout-2, roi.Incremental.Holdout)
		counts, err := s.CheckinCounts(ctx, c.ID)
		require.NoError(t, err)
		require.EqualValues(t, 2, counts.Arrived)

		// A second tap changes nothing more.
		again, err := s.CheckIn(ctx, c.ID, campaigns.CheckinTarget{CustomerID: held[0].CustomerID}, nil)
		require.NoError(t, err)
		require.False(t, again.Created)

		// A mistaken tap undone puts them back in the control group.
		require.NoError(t, s.UndoCheckIn(ctx, c.ID, held[0].ID, nil))
		var back campaigns.Invitation
		require.NoError(t, s.DB().First(&back, held[0].ID).Error)
		require.False(t, back.Attended)
		require.True(t, back.Holdout, "back in the holdout")
		require.False(t, back.WalkIn)
		require.Equal(t, campaigns.InvPending, back.Status)
		require.Empty(t, back.StatusReason)
		roi, err = s.CampaignROI(ctx, c.ID)
		require.NoError(t, err)
		require.EqualValues(t, 1, roi.Attendees)
		require.Equal(t, before.Incremental.Holdout-1, roi.Incremental.Holdout)
	})
}

// Undoing a mistaken check-in takes back the attended promotion with a
// compensating ledger row by the rep who undid it; a later real check-in
// promotes again, once. When later changes followed the credit, the level
// stays and the ledger says the check-in was undone and why the level
// stands.
func TestUndoCheckInTakesBackThePromotion(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		c, cl := sentEvent(t, s, 2, 10, 0)
		rep, err := s.CreateUser(ctx, campaigns.NewUser{Email: fmt.Sprintf("rep%d@example.com", time.Now().UnixNano()),
			Role: campaigns.RoleRep, Password: "a long password"})
		require.NoError(t, err)
		level := func(id int64) campaigns.Level {
			cu, err := s.Customer(ctx, id)
			require.NoError(t, err)
			return cu.Level
		}
		lastEntry := func(id int64) campaigns.LedgerEntry {
			led, err := s.Ledger(ctx, id)
			require.NoError(t, err)
			return led[len(led)-1]
		}
		attendedCredits := func(id int64) (n int64) {
			require.NoError(t, s.DB().Raw(`SELECT count(*) FROM level_ledger WHERE customer_id = ? AND rule = 'attended'`, id).Scan(&n).Error)
			return n
		}

		who := cl[0].CustomerID
		before := level(who)
		for round := 1; round <= 2; round++ {
			res, err := s.CheckIn(ctx, c.ID, campaigns.CheckinTarget{CustomerID: who}, rep)
			require.NoError(t, err)
			require.True(t, res.Created)
			require.Equal(t, campaigns.LevelAcquaintance, level(who), "round %d: the check-in promotes", round)
			require.EqualValues(t, round, attendedCredits(who))
			_, err = s.CheckIn(ctx, c.ID, campaigns.CheckinTarget{CustomerID: who}, rep) // a second tap
			require.NoError(t, err)
			require.EqualValues(t, round, attendedCredits(who), "round %d: one credit per check-in", round)

			require.NoError(t, s.UndoCheckIn(ctx, c.ID, res.InvitationID, rep))
			require.Equal(t, before, level(who), "round %d: the undone check-in leaves no promotion", round)
			e := lastEntry(who)
			require.Equal(t, campaigns.RuleCheckinUndone, e.Rule)
			require.Equal(t, campaigns.LevelAcquaintance, e.FromLevel)
			require.Equal(t, before, e.ToLevel)
			require.Equal(t, rep.Email, e.Actor)
			require.Equal(t, campaigns.CampaignSource(c.ID), e.Source)
			require.Contains(t, e.Note, "reverses the attended credit")
			var inv campaigns.Invitation
			require.NoError(t, s.DB().First(&inv, res.InvitationID).Error)
			require.False(t, inv.Attended)
			require.NoError(t, s.UndoCheckIn(ctx, c.ID, res.InvitationID, rep)) // undoing twice changes nothing
			require.Equal(t, campaigns.RuleCheckinUndone, lastEntry(who).Rule)
			require.Equal(t, e.ID, lastEntry(who).ID)
		}

		// A walk-in, undone and checked in again, is promoted again.
		walk := campaigns.CheckinTarget{Name: "Wally Walker", Email: "wally@example.com"}
		w, err := s.CheckIn(ctx, c.ID, walk, rep)
		require.NoError(t, err)
		require.Equal(t, campaigns.LevelAcquaintance, level(w.CustomerID))
		require.NoError(t, s.UndoCheckIn(ctx, c.ID, w.InvitationID, rep))
		require.Equal(t, campaigns.LevelContact, level(w.CustomerID))
		w, err = s.CheckIn(ctx, c.ID, walk, rep)
		require.NoError(t, err)
		require.True(t, w.Created)
		require.Equal(t, campaigns.LevelAcquaintance, level(w.CustomerID))

		// A change after the credit: the level it set stands.
		other := cl[1].CustomerID
		res, err := s.CheckIn(ctx, c.ID, campaigns.CheckinTarget{CustomerID: other}, rep)
		require.NoError(t, err)
		_, err = s.SetLevel(ctx, other, campaigns.LevelGoodCustomer, "bought twice by phone", nil)
		require.NoError(t, err)
		require.NoError(t, s.UndoCheckIn(ctx, c.ID, res.InvitationID, rep))
		require.Equal(t, campaigns.LevelGoodCustomer, level(other))
		e := lastEntry(other)
		require.Equal(t, campaigns.RuleCheckinUndone, e.Rule)
		require.Equal(t, campaigns.LevelGoodCustomer, e.FromLevel)
		require.Equal(t, campaigns.LevelGoodCustomer, e.ToLevel)
		require.Contains(t, e.Note, "stands")
		_, err = s.CheckIn(ctx, c.ID, campaigns.CheckinTarget{CustomerID: other}, rep)
		require.NoError(t, err)
		require.EqualValues(t, 1, attendedCredits(other), "the credit that stands is not given twice")
	})
}

// An undone check-in (the level taken back, a compensating ledger row)
// must not count as a promotion on the campaign's funnel and ROI.
func TestUndoneCheckInIsNotAPromotion(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		ids := addCustomers(t, s, 3, "undo-")
		require.NoError(t, s.DB().Exec("UPDATE customers SET level = 3 WHERE id IN ?", ids).Error)
		c, cl := sendAll(t, s, startCampaign(t, s, eventInput("Undo")))

		before, err := s.Funnel(ctx, c)
		require.NoError(t, err)
		require.Zero(t, before.Promoted, "nobody moved yet")

		res, err := s.CheckIn(ctx, c.ID, campaigns.CheckinTarget{CustomerID: cl[0].CustomerID}, nil)
		require.NoError(t, err)
		require.NoError(t, s.UndoCheckIn(ctx, c.ID, res.InvitationID, nil))
		cu, err := s.Customer(ctx, cl[0].CustomerID)
		require.NoError(t, err)
		require.Equal(t, campaigns.Level(3), cu.Level, "the level went back")

		f, err := s.Funnel(ctx, c)
		require.NoError(t, err)
		roi, err := s.CampaignROI(ctx, c.ID)
		require.NoError(t, err)
		require.Zero(t, f.Attended)
		require.Zero(t, roi.Attendees)
		require.Zero(t, f.Promoted, "funnel: the undone check-in promoted nobody")
		require.Zero(t, roi.Promotions, "ROI: the undone check-in promoted nobody")
	})
}

package campaigns_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
)

// sentEvent creates an event for n Chicago customers with the given
// capacity, starts it and claims everything: it returns each invitee's
// RSVP and check-in tokens in invitation order.
func sentEvent(t *testing.T, s *campaigns.Store, n, capacity, guests int) (*campaigns.Campaign, []campaigns.Claim) {
	t.Helper()
	ctx := context.Background()
	addCustomers(t, s, n, fmt.Sprintf("ev%d-", time.Now().UnixNano()%100000))
	in := eventInput("Seats")
	in.Event.Capacity, in.Event.GuestsPerInvite = capacity, guests
	c, err := s.CreateCampaign(ctx, in, "t")
	require.NoError(t, err)
	_, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true})
	require.NoError(t, err)
	_, err = s.Start(ctx, c.ID)
	require.NoError(t, err)
	cl, err := s.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "w", BatchID: "b", Limit: 1000, Lease: time.Minute, CancelBy: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	var ids []int64
	for _, x := range cl {
		ids = append(ids, x.ID)
	}
	_, err = s.SettleSent(ctx, campaigns.QueueInvitations, "w", "b", ids, "m", true)
	require.NoError(t, err)
	c, err = s.Campaign(ctx, c.ID)
	require.NoError(t, err)
	return c, cl
}

func TestConcurrentYesAnswersNeverOverfill(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		n, seats := 200, 20
		if testing.Short() {
			n = 40
		}
		c, cl := sentEvent(t, s, n, seats, 0)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for _, x := range cl {
			wg.Add(1)
			go func(tok string) {
				defer wg.Done()
				_, err := s.Answer(ctx, tok, campaigns.RSVPYes, 0)
				errs <- err
			}(x.Tokens[campaigns.TokenRSVP])
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		f, err := s.Funnel(ctx, c)
		require.NoError(t, err)
		require.EqualValues(t, seats, f.RSVPYes)
		require.EqualValues(t, n-seats, f.Waitlisted)

		// Positions are 1..n-seats, each once, in arrival order.
		seen := map[int64]bool{}
		for _, x := range cl {
			v, err := s.RSVPByToken(ctx, x.Tokens[campaigns.TokenRSVP])
			require.NoError(t, err)
			if v.Invitation.RSVP == campaigns.RSVPWaitlisted {
				require.False(t, seen[v.Position])
				seen[v.Position] = true
			}
		}
		require.Len(t, seen, n-seats)
	})
}

func TestDeclineHandsTheSeatToTheFirstInLine(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		c, cl := sentEvent(t, s, 11, 3, 1)
		tok := func(i int) string { return cl[i].Tokens[campaigns.TokenRSVP] }
		// Guest 0 brings one guest: two seats.
		r, err := s.Answer(ctx, tok(0), campaigns.RSVPYes, 1)
		require.NoError(t, err)
		require.Equal(t, campaigns.RSVPYes, r.View.Invitation.RSVP)
		_, err = s.Answer(ctx, tok(1), campaigns.RSVPYes, 0)
		require.NoError(t, err)
		for i := 2; i < 11; i++ {
			r, err := s.Answer(ctx, tok(i), campaigns.RSVPYes, 0)
			require.NoError(t, err)
			require.Equal(t, campaigns.RSVPWaitlisted, r.View.Invitation.RSVP)
			require.EqualValues(t, i-1, r.View.Position)
		}
		// Too many guests is refused, naming the field.
		_, err = s.Answer(ctx, tok(1), campaigns.RSVPYes, 2)
		require.Equal(t, campaigns.EINVALID, campaigns.ErrorCode(err))
		// The same answer twice changes nothing.
		r, err = s.Answer(ctx, tok(1), campaigns.RSVPYes, 0)
		require.NoError(t, err)
		require.False(t, r.Changed)

		r, err = s.Answer(ctx, tok(1), campaigns.RSVPNo, 0)
		require.NoError(t, err)
		require.Equal(t, []int64{cl[2].ID}, r.Promoted, "the first in line gets the freed seat")
		v, err := s.RSVPByToken(ctx, tok(3))
		require.NoError(t, err)
		require.EqualValues(t, 1, v.Position, "everyone moves up")
		f, err := s.Funnel(ctx, c)
		require.NoError(t, err)
		require.EqualValues(t, 2, f.RSVPYes)
		require.EqualValues(t, 1, f.RSVPNo)
		require.EqualValues(t, 8, f.Waitlisted)
		var seats int64
		require.NoError(t, s.DB().Table("followups").Where("campaign_id = ? AND kind = 'seat'", c.ID).Count(&seats).Error)
		require.EqualValues(t, 1, seats, "the promoted guest is emailed")

		// Answering credits the rsvp rule once; the ledger names it.
		led, err := s.Ledger(ctx, cl[1].CustomerID)
		require.NoError(t, err)
		n := 0
		for _, e := range led {
			if e.Rule == "rsvp" {
				n++
				require.Equal(t, campaigns.CampaignSource(c.ID), e.Source)
			}
		}
		require.Equal(t, 1, n)

		// After the deadline, answers are refused.
		require.NoError(t, s.DB().Exec("UPDATE campaigns SET rsvp_deadline = ? WHERE id = ?", time.Now().UTC().Add(-time.Minute), c.ID).Error)
		_, err = s.Answer(ctx, tok(5), campaigns.RSVPNo, 0)
		require.Equal(t, campaigns.ECONFLICT, campaigns.ErrorCode(err))
		v, err = s.RSVPByToken(ctx, tok(5))
		require.NoError(t, err)
		require.False(t, v.Open)

		_, err = s.Answer(ctx, "forgedforgedforgedforgedforged", campaigns.RSVPYes, 0)
		require.Equal(t, campaigns.ENOTFOUND, campaigns.ErrorCode(err))
	})
}

func TestCheckInOncePromotesOnce(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		c, cl := sentEvent(t, s, 3, 10, 0)
		rep, err := s.CreateUser(ctx, campaigns.NewUser{Email: fmt.Sprintf("rep%d@example.com", time.Now().UnixNano()), Role: campaigns.RoleRep, Password: "a long password"})
		require.NoError(t, err)
		cust := cl[0].CustomerID
		before, err := s.Customer(ctx, cust)
		require.NoError(t, err)

		var wg sync.WaitGroup
		results := make(chan *campaigns.CheckinResult, 2)
		for i := 0; i < 2; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := s.CheckIn(ctx, c.ID, campaigns.CheckinTarget{CustomerID: cust}, rep)
				if err == nil {
					results <- r
				}
			}()
		}
		wg.Wait()
		close(results)
		created := 0
		for r := range results {
			if r.Created {
				created++
			}
		}
		require.Equal(t, 1, created, "two reps tapping make one attendance")
		after, err := s.Customer(ctx, cust)
		require.NoError(t, err)
		require.Equal(t, max(before.Level+1, campaigns.LevelAcquaintance), after.Level, "attended: one up, at least 4")
		// By QR token: the same guest again is not a second attendance.
		r, err := s.CheckIn(ctx, c.ID, campaigns.CheckinTarget{Token: cl[0].Tokens[campaigns.TokenCheckin]}, rep)
		require.NoError(t, err)
		require.False(t, r.Created)
		again, err := s.Customer(ctx, cust)
		require.NoError(t, err)
		require.Equal(t, after.Level, again.Level)

		// A walk-in is created at Contact, owned by the rep.
		w, err := s.CheckIn(ctx, c.ID, campaigns.CheckinTarget{Name: "Walk In", Email: "walkin@example.com", Company: "Acme"}, rep)
		require.NoError(t, err)
		require.True(t, w.Created)
		require.True(t, w.WalkIn)
		wc, err := s.Customer(ctx, w.CustomerID)
		require.NoError(t, err)
		require.Equal(t, rep.ID, *wc.OwnerID)
		require.Equal(t, campaigns.LevelAcquaintance, wc.Level, "created at 2, then attended: 4")
		_, err = s.CheckIn(ctx, c.ID, campaigns.CheckinTarget{Name: "No Mail"}, rep)
		require.Equal(t, campaigns.EINVALID, campaigns.ErrorCode(err))

		counts, err := s.CheckinCounts(ctx, c.ID)
		require.NoError(t, err)
		require.EqualValues(t, 2, counts.Arrived)
		require.EqualValues(t, 1, counts.WalkIns)
		found, err := s.SearchInvitees(ctx, c.ID, "walk", 10)
		require.NoError(t, err)
		require.Len(t, found, 1)
		require.NoError(t, s.UndoCheckIn(ctx, c.ID, found[0].InvitationID))
	})
}

func TestReferralPromotesACustomerToFriend(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		ids := addCustomers(t, s, 2, fmt.Sprintf("rf%d-", time.Now().UnixNano()%100000))
		_, err := s.SetLevel(ctx, ids[0], campaigns.LevelCustomer, "bought once", nil)
		require.NoError(t, err)
		in := campaigns.ReferralInput{ReferrerID: ids[0]}
		in.Referred.Name, in.Referred.Email = "Newcomer", "newcomer@example.com"
		r, created, err := s.RecordReferral(ctx, in, nil)
		require.NoError(t, err)
		require.True(t, created)
		cu, err := s.Customer(ctx, ids[0])
		require.NoError(t, err)
		require.Equal(t, campaigns.LevelFriend, cu.Level)
		b, err := s.Customer(ctx, r.ReferredCustomerID)
		require.NoError(t, err)
		require.Equal(t, campaigns.LevelContact, b.Level)
		_, created, err = s.RecordReferral(ctx, in, nil)
		require.NoError(t, err)
		require.False(t, created, "the same pair twice is one referral")

		// Below Customer, a referral does not make a Friend.
		in2 := campaigns.ReferralInput{ReferrerID: ids[1]}
		in2.Referred.Name, in2.Referred.Email = "Other", "other@example.com"
		_, _, err = s.RecordReferral(ctx, in2, nil)
		require.NoError(t, err)
		cu, err = s.Customer(ctx, ids[1])
		require.NoError(t, err)
		require.Equal(t, campaigns.LevelRecord, cu.Level)
	})
}

func TestDefaultRules(t *testing.T) {
	rule := func(name string) campaigns.Rule {
		for _, r := range campaigns.DefaultRules {
			if r.Name == name {
				return r
			}
		}
		t.Fatalf("no rule %s", name)
		return campaigns.Rule{}
	}
	cases := []struct {
		rule     string
		from, to campaigns.Level
	}{
		{"delivered", 1, 2}, {"delivered", 5, 5},
		{"rsvp", 1, 3}, {"rsvp", 2, 3}, {"rsvp", 4, 4},
		{"survey", 2, 3},
		{"attended", 1, 4}, {"attended", 3, 4}, {"attended", 4, 5}, {"attended", 6, 7}, {"attended", 7, 7},
		{"first_purchase", 2, 5}, {"first_purchase", 6, 6},
		{"repeat_purchase", 5, 6}, {"repeat_purchase", 7, 7},
		{"referral", 4, 4}, {"referral", 5, 7}, {"referral", 6, 7},
	}
	for _, tc := range cases {
		require.Equal(t, tc.to, rule(tc.rule).Target(tc.from), "%s from %d", tc.rule, tc.from)
	}
}

// The seat count kept on the event always equals the sum over its yes
// answers, through answers, changes of mind, more guests, fewer guests,
// waitlist promotions and a larger room.
func TestSeatCountFollowsEveryAnswer(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		c, cl := sentEvent(t, s, 12, 8, 2)
		sum := func() int64 {
			var n int64
			require.NoError(t, s.DB().Raw(`SELECT coalesce(sum(1 + guests), 0) FROM invitations WHERE campaign_id = ? AND rsvp = 'yes'`, c.ID).Scan(&n).Error)
			return n
		}
		kept := func() int64 {
			got, err := s.Campaign(ctx, c.ID)
			require.NoError(t, err)
			return got.SeatsTaken
		}
		r := rand.New(rand.NewPCG(5, 6))
		for step := 0; step < 120; step++ {
			i := r.IntN(len(cl))
			answer := []string{campaigns.RSVPYes, campaigns.RSVPYes, campaigns.RSVPNo}[r.IntN(3)]
			_, err := s.Answer(ctx, cl[i].Tokens[campaigns.TokenRSVP], answer, r.IntN(3))
			require.NoError(t, err)
			if step == 60 {
				capacity := 14
				_, err := s.UpdateEvent(ctx, c.ID, campaigns.EventChange{Capacity: &capacity})
				require.NoError(t, err)
			}
			require.Equal(t, sum(), kept(), "after step %d", step)
			require.LessOrEqual(t, kept(), int64(14))
		}
	})
}

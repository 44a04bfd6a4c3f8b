package campaigns_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
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
	return sendAll(t, s, c)
}

// sendAll claims a started campaign's invitations (up to 1,000) and
// settles them as sent, as a worker would: it returns the campaign as it
// is then and the claims.
func sendAll(t *testing.T, s *campaigns.Store, c *campaigns.Campaign) (*campaigns.Campaign, []campaigns.Claim) {
	t.Helper()
	ctx := context.Background()
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
		var answeredAt *time.Time // guest 2's answer, which promotion keeps
		for i := 2; i < 11; i++ {
			r, err := s.Answer(ctx, tok(i), campaigns.RSVPYes, 0)
			require.NoError(t, err)
			require.Equal(t, campaigns.RSVPWaitlisted, r.View.Invitation.RSVP)
			require.EqualValues(t, i-1, r.View.Position)
			if i == 2 {
				answeredAt = r.View.Invitation.RSVPAt
			}
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
		var promoted campaigns.Invitation
		require.NoError(t, s.DB().Take(&promoted, cl[2].ID).Error)
		require.Equal(t, campaigns.RSVPYes, promoted.RSVP)
		require.Nil(t, promoted.WaitlistSeq)
		require.NotNil(t, answeredAt)
		require.WithinDuration(t, *answeredAt, *promoted.RSVPAt, time.Microsecond, "promotion keeps when they answered")

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
		require.NoError(t, s.UndoCheckIn(ctx, c.ID, found[0].InvitationID, rep))
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
			if campaigns.ErrorCode(err) != campaigns.ECONFLICT { // more guests than the room has: refused
				require.NoError(t, err)
			}
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

// A confirmed guest who asks to bring a guest when the room is full is
// told there is no room and keeps the seat they hold, with the guests they
// had; those waiting stay where they were.
func TestConfirmedGuestAskingForMoreGuestsKeepsSeat(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		c, cl := sentEvent(t, s, 3, 2, 1)
		tok := func(i int) string { return cl[i].Tokens[campaigns.TokenRSVP] }
		for i := 0; i < 3; i++ { // 0 and 1 take the two seats, 2 waits
			_, err := s.Answer(ctx, tok(i), campaigns.RSVPYes, 0)
			require.NoError(t, err)
		}
		_, err := s.Answer(ctx, tok(0), campaigns.RSVPYes, 1)
		require.Equal(t, campaigns.ECONFLICT, campaigns.ErrorCode(err), "%v", err)
		require.Contains(t, err.Error(), "no room for another guest")

		states := map[int]string{}
		for i := range cl {
			v, err := s.RSVPByToken(ctx, tok(i))
			require.NoError(t, err)
			states[i] = v.Invitation.RSVP
			if i == 0 {
				require.Zero(t, v.Invitation.Guests, "guest count kept")
			}
			if i == 2 {
				require.EqualValues(t, 1, v.Position, "still first in line")
			}
		}
		require.Equal(t, map[int]string{0: campaigns.RSVPYes, 1: campaigns.RSVPYes, 2: campaigns.RSVPWaitlisted}, states)
		got, err := s.Campaign(ctx, c.ID)
		require.NoError(t, err)
		require.EqualValues(t, 2, got.SeatsTaken)

		// Once the room has space, the extra guest fits.
		_, err = s.Answer(ctx, tok(2), campaigns.RSVPNo, 0)
		require.NoError(t, err)
		_, err = s.Answer(ctx, tok(1), campaigns.RSVPNo, 0)
		require.NoError(t, err)
		r, err := s.Answer(ctx, tok(0), campaigns.RSVPYes, 1)
		require.NoError(t, err)
		require.Equal(t, campaigns.RSVPYes, r.View.Invitation.RSVP)
		require.Equal(t, 1, r.View.Invitation.Guests)
	})
}

// The waitlist keeps arrival order whatever the clock says: a second web
// process whose clock runs slow (or one whose clock steps back) used to
// put a later answer ahead of an earlier one, and the freed seat went to it.
func TestWaitlistOrderIgnoresClock(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		defer s.SetClock(time.Now)
		_, cl := sentEvent(t, s, 3, 1, 0)
		tok := func(i int) string { return cl[i].Tokens[campaigns.TokenRSVP] }
		_, err := s.Answer(ctx, tok(0), campaigns.RSVPYes, 0) // the only seat
		require.NoError(t, err)
		r1, err := s.Answer(ctx, tok(1), campaigns.RSVPYes, 0)
		require.NoError(t, err)
		require.Equal(t, campaigns.RSVPWaitlisted, r1.View.Invitation.RSVP)
		require.EqualValues(t, 1, r1.View.Position)
		s.SetClock(func() time.Time { return time.Now().Add(-time.Minute) })
		r2, err := s.Answer(ctx, tok(2), campaigns.RSVPYes, 0)
		require.NoError(t, err)
		require.EqualValues(t, 2, r2.View.Position, "the later answer is second in line")
		s.SetClock(time.Now)
		r, err := s.Answer(ctx, tok(0), campaigns.RSVPNo, 0)
		require.NoError(t, err)
		require.Equal(t, []int64{cl[1].ID}, r.Promoted, "the first in line gets the seat")
	})
}

// rsvpModel is the RSVP rules written as plainly as possible, one answer
// at a time: the oracle for answers settled in batches.
type rsvpModel struct {
	capacity, maxGuests int
	seats               int
	guests              []modelGuest
	nextSeq             int
}

type modelGuest struct {
	RSVP   string
	Guests int
	Place  int64 // rank on the waitlist, 0 if not waiting
	seq    int
}

func (m *rsvpModel) answer(i int, answer string, n int) campaigns.AnswerOutcome {
	g := &m.guests[i]
	if answer == campaigns.RSVPNo {
		n = 0
	}
	if n < 0 || n > m.maxGuests {
		return campaigns.AnswerOutcome{Err: &campaigns.Error{Code: campaigns.EINVALID}}
	}
	if (answer == campaigns.RSVPNo && g.RSVP == campaigns.RSVPNo) ||
		(answer == campaigns.RSVPYes && (g.RSVP == campaigns.RSVPYes || g.RSVP == campaigns.RSVPWaitlisted) && g.Guests == n) {
		return campaigns.AnswerOutcome{}
	}
	// A confirmed guest whose bigger party does not fit keeps their seat.
	if g.RSVP == campaigns.RSVPYes && answer == campaigns.RSVPYes && n > g.Guests && m.seats+n-g.Guests > m.capacity {
		return campaigns.AnswerOutcome{Err: &campaigns.Error{Code: campaigns.ECONFLICT}}
	}
	wasYes, wasWaiting, old := g.RSVP == campaigns.RSVPYes, g.RSVP == campaigns.RSVPWaitlisted, g.Guests
	if wasYes {
		m.seats -= 1 + g.Guests
	}
	if answer == campaigns.RSVPNo {
		g.RSVP = campaigns.RSVPNo
	} else {
		ahead := 0
		for j, w := range m.guests {
			if j != i && w.RSVP == campaigns.RSVPWaitlisted && !wasYes {
				ahead++
			}
		}
		if ahead == 0 && m.seats+1+n <= m.capacity {
			g.RSVP = campaigns.RSVPYes
		} else if !wasWaiting {
			m.nextSeq++
			g.RSVP, g.seq = campaigns.RSVPWaitlisted, m.nextSeq
		}
	}
	g.Guests = n
	if g.RSVP == campaigns.RSVPYes {
		m.seats += 1 + n
	}
	if wasYes || answer == campaigns.RSVPNo || n < old {
		for {
			head := -1
			for j, w := range m.guests {
				if w.RSVP == campaigns.RSVPWaitlisted && (head < 0 || w.seq < m.guests[head].seq) {
					head = j
				}
			}
			if head < 0 || m.seats+1+m.guests[head].Guests > m.capacity {
				break
			}
			m.guests[head].RSVP = campaigns.RSVPYes
			m.seats += 1 + m.guests[head].Guests
		}
	}
	return campaigns.AnswerOutcome{Changed: true}
}

func (m *rsvpModel) states() []modelGuest {
	out := make([]modelGuest, len(m.guests))
	for i, g := range m.guests {
		out[i] = modelGuest{RSVP: g.RSVP, Guests: g.Guests}
		if g.RSVP == campaigns.RSVPWaitlisted {
			for _, w := range m.guests {
				if w.RSVP == campaigns.RSVPWaitlisted && w.seq <= g.seq {
					out[i].Place++
				}
			}
		}
	}
	return out
}

// Answers settled together in one transaction must end exactly where the
// same answers decided one at a time end: the same outcome for each
// answer, the same yes / no / waitlist and place for each guest, the same
// seats, one credit per guest who answered.
func TestAnswersSettledTogetherMatchOneByOne(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		const guests, capacity, n = 2, 9, 14
		c, cl := sentEvent(t, s, n, capacity, guests)
		m := &rsvpModel{capacity: capacity, maxGuests: guests, guests: make([]modelGuest, n)}
		for i := range m.guests {
			m.guests[i].RSVP = campaigns.RSVPNone
		}
		r := rand.New(rand.NewPCG(7, 8))
		answered := map[int]bool{}
		waited := 0
		for step := 0; step < 300; {
			size := 1 + r.IntN(30)
			var in []campaigns.AnswerInput
			var want []campaigns.AnswerOutcome
			for k := 0; k < size; k++ {
				i := r.IntN(n)
				answer := []string{campaigns.RSVPYes, campaigns.RSVPYes, campaigns.RSVPNo}[r.IntN(3)]
				g := r.IntN(guests + 2) // guests+1 is one too many
				want = append(want, m.answer(i, answer, g))
				if want[k].Changed {
					answered[i] = true
				}
				in = append(in, campaigns.AnswerInput{Token: cl[i].Tokens[campaigns.TokenRSVP], Answer: answer, Guests: g})
			}
			got, err := s.SettleTogether(ctx, in)
			require.NoError(t, err)
			for k := range want {
				require.Equal(t, want[k].Changed, got[k].Changed, "step %d answer %d changed", step, k)
				require.Equal(t, campaigns.ErrorCode(want[k].Err), campaigns.ErrorCode(got[k].Err), "step %d answer %d error", step, k)
			}
			var rows []modelGuest
			require.NoError(t, s.DB().Raw(`SELECT rsvp, guests, CASE WHEN rsvp = 'waitlisted'
				THEN (SELECT count(*) FROM invitations w WHERE w.campaign_id = i.campaign_id AND w.rsvp = 'waitlisted' AND w.waitlist_seq <= i.waitlist_seq)
				ELSE 0 END AS place FROM invitations i WHERE campaign_id = ? ORDER BY id`, c.ID).Scan(&rows).Error)
			require.Equal(t, m.states(), rows, "after step %d", step)
			got2, err := s.Campaign(ctx, c.ID)
			require.NoError(t, err)
			require.Equal(t, int64(m.seats), got2.SeatsTaken, "seats after step %d", step)
			for _, g := range m.guests {
				if g.RSVP == campaigns.RSVPWaitlisted {
					waited++
				}
			}
			step += size
		}
		require.Positive(t, waited, "the run never filled the room")
		var credited int64
		require.NoError(t, s.DB().Raw(`SELECT count(DISTINCT customer_id) FROM level_ledger WHERE rule = 'rsvp' AND source = ?`,
			campaigns.CampaignSource(c.ID)).Scan(&credited).Error)
		var twice int64
		require.NoError(t, s.DB().Raw(`SELECT count(*) - count(DISTINCT customer_id) FROM level_ledger WHERE rule = 'rsvp' AND source = ?`,
			campaigns.CampaignSource(c.ID)).Scan(&twice).Error)
		require.Equal(t, int64(len(answered)), credited, "one credit per guest who answered")
		require.Zero(t, twice)
	})
}

// sameFields compares two structs field by field, times by the instant.
func sameFields(t *testing.T, want, got any) {
	t.Helper()
	w, g := reflect.ValueOf(want), reflect.ValueOf(got)
	for i := 0; i < w.NumField(); i++ {
		name := w.Type().Field(i).Name
		a, b := w.Field(i).Interface(), g.Field(i).Interface()
		switch x := a.(type) {
		case time.Time:
			require.True(t, x.Equal(b.(time.Time)), "%s: %v, got %v", name, x, b)
		case *time.Time:
			y := b.(*time.Time)
			require.Equal(t, x == nil, y == nil, "%s: %v, got %v", name, x, y)
			if x != nil {
				require.True(t, x.Equal(*y), "%s: %v, got %v", name, *x, *y)
			}
		default:
			require.Equal(t, a, b, name)
		}
	}
}

// The RSVP page's one-query read (scanned by hand for speed) must read
// every field GORM reads.
func TestGuestByTokenReadsEveryField(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		c, cl := sentEvent(t, s, 3, 1, 1)
		_, err := s.Answer(ctx, cl[0].Tokens[campaigns.TokenRSVP], campaigns.RSVPYes, 1) // over capacity: waitlisted
		require.NoError(t, err)
		inv, camp, name, err := s.GuestByToken(ctx, cl[0].Tokens[campaigns.TokenRSVP])
		require.NoError(t, err)
		var want campaigns.Invitation
		require.NoError(t, s.DB().Take(&want, cl[0].ID).Error)
		require.Equal(t, campaigns.RSVPWaitlisted, want.RSVP)
		sameFields(t, want, inv)
		wantC, err := s.Campaign(ctx, c.ID)
		require.NoError(t, err)
		require.NotNil(t, wantC.StartsAt)
		sameFields(t, *wantC, camp)
		require.Equal(t, cl[0].Name, name)
		tok := cl[0].Tokens[campaigns.TokenRSVP]
		wrong := "x" + tok[1:]
		if tok[0] == 'x' { // one token in 64 starts with x
			wrong = "y" + tok[1:]
		}
		_, _, _, err = s.GuestByToken(ctx, wrong)
		require.Equal(t, campaigns.ENOTFOUND, campaigns.ErrorCode(err))
	})
}

// A check-in names what is wrong: the event, then the guest.
func TestCheckInRefusals(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		c, cl := sentEvent(t, s, 2, 10, 0)
		other, otherCl := sentEvent(t, s, 1, 10, 0)
		code := func(err error) string { return campaigns.ErrorCode(err) }

		r, err := s.CheckIn(ctx, c.ID, campaigns.CheckinTarget{CustomerID: cl[1].CustomerID}, nil)
		require.NoError(t, err)
		require.True(t, r.Created)
		cu, err := s.Customer(ctx, cl[1].CustomerID)
		require.NoError(t, err)
		require.Equal(t, cu.Level, r.Level, "the result carries the level after the credit")
		require.Equal(t, cu.Name, r.Name)
		again, err := s.CheckIn(ctx, c.ID, campaigns.CheckinTarget{Token: cl[1].Tokens[campaigns.TokenCheckin]}, nil)
		require.NoError(t, err)
		require.False(t, again.Created)
		require.True(t, r.CheckedInAt.Equal(again.CheckedInAt), "the first arrival's time stands")
		require.Equal(t, r.Level, again.Level)

		_, err = s.CheckIn(ctx, c.ID, campaigns.CheckinTarget{CustomerID: 999999}, nil)
		require.Equal(t, campaigns.ENOTFOUND, code(err))
		require.Contains(t, err.Error(), "invitation of customer 999999")
		_, err = s.CheckIn(ctx, c.ID, campaigns.CheckinTarget{Token: otherCl[0].Tokens[campaigns.TokenCheckin]}, nil)
		require.Equal(t, campaigns.ENOTFOUND, code(err))
		require.Contains(t, err.Error(), "another event")
		_, err = s.CheckIn(ctx, c.ID, campaigns.CheckinTarget{Token: cl[0].Tokens[campaigns.TokenRSVP]}, nil)
		require.Equal(t, campaigns.ENOTFOUND, code(err), "an RSVP link is not a check-in code")
		_, err = s.CheckIn(ctx, c.ID, campaigns.CheckinTarget{Token: "short"}, nil)
		require.Equal(t, campaigns.ENOTFOUND, code(err))
		_, err = s.CheckIn(ctx, 999999, campaigns.CheckinTarget{CustomerID: cl[0].CustomerID}, nil)
		require.Equal(t, campaigns.ENOTFOUND, code(err))
		require.Contains(t, err.Error(), "campaign 999999")

		_, err = s.Cancel(ctx, other.ID)
		require.NoError(t, err)
		_, err = s.CheckIn(ctx, other.ID, campaigns.CheckinTarget{Token: otherCl[0].Tokens[campaigns.TokenCheckin]}, nil)
		require.Equal(t, campaigns.ECONFLICT, code(err))
		_, err = s.CheckIn(ctx, other.ID, campaigns.CheckinTarget{Token: "short"}, nil)
		require.Equal(t, campaigns.ECONFLICT, code(err), "the event's problem comes first")

		gift, err := s.CreateCampaign(ctx, campaigns.CampaignInput{Kind: campaigns.KindGift, Name: "Thanks", TimeZone: "America/Chicago",
			Filter: campaigns.Filter{Metros: []string{"chicago"}},
			Gift:   &campaigns.GiftFields{Type: "gift_card", FaceValueCents: 1000, UnitCostCents: 1000}}, "t")
		require.NoError(t, err)
		_, err = s.CheckIn(ctx, gift.ID, campaigns.CheckinTarget{CustomerID: cl[0].CustomerID}, nil)
		require.Equal(t, campaigns.EINVALID, code(err))
	})
}

// A busy door: three reps tap every guest at once. Arrivals are written in
// batches; each guest is checked in once, by the rep whose tap won, with
// one attended credit in that rep's name, and every tap reports the same
// arrival time.
func TestBusyDoorChecksEachGuestInOnce(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		const guests = 40
		c, cl := sentEvent(t, s, guests, 100, 0)
		var reps []*campaigns.User
		for i := 0; i < 3; i++ {
			r, err := s.CreateUser(ctx, campaigns.NewUser{Email: fmt.Sprintf("door%d-%d@example.com", i, time.Now().UnixNano()),
				Role: campaigns.RoleRep, Password: "a long password"})
			require.NoError(t, err)
			reps = append(reps, r)
		}
		type tap struct {
			guest, rep int
			res        *campaigns.CheckinResult
		}
		taps := make(chan tap, guests*len(reps))
		var wg sync.WaitGroup
		for g := 0; g < guests; g++ {
			for r := range reps {
				wg.Add(1)
				go func() {
					defer wg.Done()
					target := campaigns.CheckinTarget{CustomerID: cl[g].CustomerID}
					if r == 1 {
						target = campaigns.CheckinTarget{Token: cl[g].Tokens[campaigns.TokenCheckin]}
					}
					res, err := s.CheckIn(ctx, c.ID, target, reps[r])
					require.NoError(t, err)
					taps <- tap{g, r, res}
				}()
			}
		}
		wg.Wait()
		close(taps)
		winner := map[int]int{}
		at := map[int]time.Time{}
		for tp := range taps {
			if tp.res.Created {
				_, dup := winner[tp.guest]
				require.False(t, dup, "guest %d checked in twice", tp.guest)
				winner[tp.guest] = tp.rep
			}
			if prev, ok := at[tp.guest]; ok {
				require.True(t, prev.Equal(tp.res.CheckedInAt), "every tap reports the same arrival")
			}
			at[tp.guest] = tp.res.CheckedInAt
		}
		require.Len(t, winner, guests, "every guest checked in once")
		for g := 0; g < guests; g++ {
			var inv campaigns.Invitation
			require.NoError(t, s.DB().Take(&inv, cl[g].ID).Error)
			require.True(t, inv.Attended)
			require.Equal(t, reps[winner[g]].Email, inv.CheckedInBy, "the winning rep is recorded")
			var credits []campaigns.LedgerEntry
			require.NoError(t, s.DB().Where("customer_id = ? AND rule = 'attended' AND source = ?", cl[g].CustomerID,
				campaigns.CampaignSource(c.ID)).Find(&credits).Error)
			require.Len(t, credits, 1, "one attended credit for guest %d", g)
			require.Equal(t, reps[winner[g]].Email, credits[0].Actor)
		}
	})
}

// Two web processes (two stores, each with its own batch queues) check the
// same guests in, in opposite orders, while the guests answer: every
// request succeeds (batches of both kinds take their locks in one order),
// and each guest is in once.
func TestBatchesOfTwoProcessesAtOnce(t *testing.T) {
	ctx := context.Background()
	u := campaignstest.URL(t, campaignstest.Postgres)
	var stores []*campaigns.Store
	for i := 0; i < 2; i++ {
		s, err := campaigns.Open(ctx, u)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		_, err = s.Migrate(ctx)
		require.NoError(t, err)
		stores = append(stores, s)
	}
	const n = 60
	c, cl := sentEvent(t, stores[0], n, n*3, 1)
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for p, s := range stores {
		for k := 0; k < n; k++ {
			g := k
			if p == 1 {
				g = n - 1 - k // the other process goes the other way
			}
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, err := s.CheckIn(ctx, c.ID, campaigns.CheckinTarget{CustomerID: cl[g].CustomerID}, nil)
				errs <- err
			}()
			go func() {
				defer wg.Done()
				_, err := s.Answer(ctx, cl[g].Tokens[campaigns.TokenRSVP], []string{campaigns.RSVPYes, campaigns.RSVPNo}[(g+p)%2], p%2)
				errs <- err
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	var attended int64
	require.NoError(t, stores[0].DB().Model(&campaigns.Invitation{}).Where("campaign_id = ? AND attended", c.ID).Count(&attended).Error)
	require.EqualValues(t, n, attended)
}

// A decline that gives a waiting guest the seat, while the email webhook
// holds that guest's invitation (an open) and goes on to the decliner's
// customer (a bounce): the RSVP batch must not hold the customer first.
func TestPromotionBesideTheWebhookDoesNotDeadlock(t *testing.T) {
	if os.Getenv("TEST_DATABASE_URL") == "" {
		t.Skip("PostgreSQL only: SQLite has one writer")
	}
	ctx := context.Background()
	s := campaignstest.Open(t, campaignstest.Postgres)
	_, cl := sentEvent(t, s, 3, 1, 0)
	_, err := s.Answer(ctx, cl[0].Tokens[campaigns.TokenRSVP], campaigns.RSVPYes, 0)
	require.NoError(t, err)
	r, err := s.Answer(ctx, cl[1].Tokens[campaigns.TokenRSVP], campaigns.RSVPYes, 0)
	require.NoError(t, err)
	require.Equal(t, campaigns.RSVPWaitlisted, r.View.Invitation.RSVP)

	webhook := s.DB().Begin()
	require.NoError(t, webhook.Error)
	defer webhook.Rollback()
	require.NoError(t, webhook.Exec(`UPDATE invitations SET opened_at = now() WHERE id = ?`, cl[1].ID).Error)
	answered := make(chan error, 1)
	go func() {
		_, err := s.Answer(ctx, cl[0].Tokens[campaigns.TokenRSVP], campaigns.RSVPNo, 0) // promotes cl[1]
		answered <- err
	}()
	waitForLock(t, s, "%SET rsvp = v.rsvp%") // the batch waits for the guest's invitation the webhook holds
	require.NoError(t, webhook.Exec(`UPDATE customers SET consent_state = 'bounced', updated_at = now() WHERE id = ?`,
		cl[0].CustomerID).Error, "the webhook goes on")
	require.NoError(t, webhook.Commit().Error)
	require.NoError(t, <-answered, "and so does the answer")
	inv, _, _, err := s.GuestByToken(ctx, cl[1].Tokens[campaigns.TokenRSVP])
	require.NoError(t, err)
	require.Equal(t, campaigns.RSVPYes, inv.RSVP, "the waiting guest has the seat")
}

// waitForLock waits (10 s at most) until a statement of this database
// whose text is LIKE query waits for a lock.
func waitForLock(t *testing.T, s *campaigns.Store, query string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var n int64
		require.NoError(t, s.DB().Raw(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND query LIKE ?`, query).Scan(&n).Error)
		if n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

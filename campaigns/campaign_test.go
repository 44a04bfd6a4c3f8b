package campaigns_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
)

func ptr[T any](v T) *T { return &v }

func eventInput(name string) campaigns.CampaignInput {
	start := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Hour)
	return campaigns.CampaignInput{Kind: campaigns.KindEvent, Name: name, TimeZone: "America/Chicago",
		Filter: campaigns.Filter{Metros: []string{"Chicago"}},
		Event: &campaigns.EventFields{Venue: "Art Institute", Address: "111 S Michigan Ave", StartsAt: &start,
			EndsAt: ptr(start.Add(3 * time.Hour)), Capacity: 40, GuestsPerInvite: 1}}
}

// addCustomers creates n subscribed customers in Chicago.
func addCustomers(t testing.TB, s *campaigns.Store, n int, prefix string) []int64 {
	t.Helper()
	var ids []int64
	for i := 0; i < n; i++ {
		r, err := s.UpsertCustomer(context.Background(), campaigns.CustomerInput{Name: fmt.Sprintf("%s %d", prefix, i),
			Email: fmt.Sprintf("%s%d@example.com", prefix, i), MetroArea: ptr("Chicago"), AnnualSpendCents: ptr(int64(50000))},
			campaigns.UpsertMeta{Actor: "t", Source: "t", Rule: campaigns.RuleAPI})
		require.NoError(t, err)
		ids = append(ids, r.Customer.ID)
	}
	return ids
}

// startCampaign creates a campaign, schedules it now and starts it (the
// audience frozen), as a worker's first tick would.
func startCampaign(t testing.TB, s *campaigns.Store, in campaigns.CampaignInput) *campaigns.Campaign {
	t.Helper()
	ctx := context.Background()
	c, err := s.CreateCampaign(ctx, in, "t")
	require.NoError(t, err)
	_, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true})
	require.NoError(t, err)
	_, err = s.Start(ctx, c.ID)
	require.NoError(t, err)
	return c
}

func TestCampaignValidationNamesFields(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		start := time.Now().Add(48 * time.Hour)
		cases := []struct {
			name  string
			in    campaigns.CampaignInput
			field string
		}{
			{"no kind", campaigns.CampaignInput{Name: "x", TimeZone: "UTC"}, "kind"},
			{"bad zone", func() campaigns.CampaignInput { in := eventInput("x"); in.TimeZone = "Mars/Olympus"; return in }(), "time_zone"},
			{"end before start", func() campaigns.CampaignInput {
				in := eventInput("x")
				in.Event.EndsAt = ptr(in.Event.StartsAt.Add(-time.Hour))
				return in
			}(), "event.ends_at"},
			{"no capacity", func() campaigns.CampaignInput { in := eventInput("x"); in.Event.Capacity = 0; return in }(), "event.capacity"},
			{"deadline after start", func() campaigns.CampaignInput {
				in := eventInput("x")
				in.Event.RSVPDeadline = ptr(in.Event.StartsAt.Add(time.Hour))
				return in
			}(), "event.rsvp_deadline"},
			{"bad filter", func() campaigns.CampaignInput {
				in := eventInput("x")
				in.Filter.MinLevel = ptr(9)
				return in
			}(), "filter.min_level"},
			{"holdout too big", func() campaigns.CampaignInput { in := eventInput("x"); in.HoldoutPercent = 80; return in }(), "holdout_percent"},
			{"gift without gift", campaigns.CampaignInput{Kind: campaigns.KindGift, Name: "g", TimeZone: "UTC"}, "gift"},
			{"unknown gift type", campaigns.CampaignInput{Kind: campaigns.KindGift, Name: "g", TimeZone: "UTC",
				Gift: &campaigns.GiftFields{Type: "yacht"}}, "gift.type"},
			{"no name", func() campaigns.CampaignInput { in := eventInput(" "); return in }(), "name"},
		}
		_ = start
		for _, tc := range cases {
			_, err := s.CreateCampaign(ctx, tc.in, "t")
			require.Error(t, err, tc.name)
			e, ok := err.(*campaigns.Error)
			require.True(t, ok, tc.name)
			require.Equal(t, campaigns.EINVALID, e.Code, tc.name)
			require.Contains(t, e.Fields, tc.field, "%s: %v", tc.name, e.Fields)
		}
	})
}

func TestStateMachine(t *testing.T) {
	legal := map[[2]campaigns.Status]bool{
		{"draft", "scheduled"}: true, {"draft", "cancelled"}: true, {"scheduled", "sending"}: true,
		{"scheduled", "paused"}: true, {"sending", "sent"}: true, {"sending", "paused"}: true, {"paused", "sending"}: true,
		{"sent", "closed"}: true, {"missed", "scheduled"}: true, {"scheduled", "missed"}: true,
	}
	illegal := [][2]campaigns.Status{{"draft", "sent"}, {"sent", "sending"}, {"closed", "scheduled"},
		{"cancelled", "scheduled"}, {"draft", "sending"}, {"closed", "cancelled"}, {"sent", "cancelled"}}
	for pair := range legal {
		require.True(t, campaigns.CanTransition(pair[0], pair[1]), "%v", pair)
	}
	for _, pair := range illegal {
		require.False(t, campaigns.CanTransition(pair[0], pair[1]), "%v", pair)
	}
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		c, err := s.CreateCampaign(ctx, eventInput("Lifecycle"), "t")
		require.NoError(t, err)
		_, err = s.Resume(ctx, c.ID)
		require.Equal(t, campaigns.ECONFLICT, campaigns.ErrorCode(err), "a draft cannot be resumed")
		_, err = s.CloseCampaign(ctx, c.ID)
		require.Equal(t, campaigns.ECONFLICT, campaigns.ErrorCode(err))
		_, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{SendAt: ptr(time.Now().Add(-2 * time.Hour))})
		require.Equal(t, campaigns.EINVALID, campaigns.ErrorCode(err), "the past")
		_, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{Cron: "0 9 1 * *"})
		require.Equal(t, campaigns.EINVALID, campaigns.ErrorCode(err), "events do not recur")
		c, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{SendAt: ptr(time.Now().Add(time.Hour))})
		require.NoError(t, err)
		require.Equal(t, campaigns.StatusScheduled, c.Status)
		_, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true})
		require.Equal(t, campaigns.ECONFLICT, campaigns.ErrorCode(err), "already scheduled")
		c, err = s.Pause(ctx, c.ID)
		require.NoError(t, err)
		c, err = s.Resume(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, campaigns.StatusScheduled, c.Status, "never started: back to waiting")
		c, err = s.Cancel(ctx, c.ID)
		require.NoError(t, err)
		_, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true})
		require.Equal(t, campaigns.ECONFLICT, campaigns.ErrorCode(err), "cancelled is final")
	})
}

func TestStartFreezesAudienceOnceWithReproducibleHoldout(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		ids := addCustomers(t, s, 200, "fz")
		require.NoError(t, s.SetConsent(ctx, ids[0], campaigns.Unsubscribed, "test"))
		in := eventInput("Freeze")
		in.HoldoutPercent = 10
		c, err := s.CreateCampaign(ctx, in, "t")
		require.NoError(t, err)
		_, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true})
		require.NoError(t, err)

		// Two processes race to start it: exactly one wins.
		type startOut struct {
			r   campaigns.StartResult
			err error
		}
		results := make(chan startOut, 2)
		for i := 0; i < 2; i++ {
			go func() {
				r, err := s.Start(ctx, c.ID)
				results <- startOut{r, err}
			}()
		}
		o1, o2 := <-results, <-results
		require.NoError(t, o1.err)
		require.NoError(t, o2.err)
		r1, r2 := o1.r, o2.r
		require.True(t, r1.Started != r2.Started, "exactly one start wins")
		won := r1
		if r2.Started {
			won = r2
		}
		require.EqualValues(t, 199, won.Frozen, "the unsubscribed customer is not in the audience")
		require.EqualValues(t, 20, won.Holdout, "10%% of 199, rounded")

		f := funnelOf(t, s, c.ID)
		require.EqualValues(t, 199, f.Audience)
		require.EqualValues(t, 20, f.Holdout)
		require.EqualValues(t, 179, f.Pending)

		// The draw is reproducible: the same seed over the same audience.
		var held []int64
		require.NoError(t, s.DB().Table("invitations").Where("campaign_id = ? AND holdout", c.ID).Order("customer_id").Pluck("customer_id", &held).Error)
		in2 := in
		in2.Name = "Freeze again"
		c2, err := s.CreateCampaign(ctx, in2, "t")
		require.NoError(t, err)
		require.NoError(t, s.DB().Exec("UPDATE campaigns SET holdout_seed = ? WHERE id = ?", c.HoldoutSeed, c2.ID).Error)
		_, err = s.Schedule(ctx, c2.ID, campaigns.ScheduleInput{Now: true})
		require.NoError(t, err)
		_, err = s.Start(ctx, c2.ID)
		require.NoError(t, err)
		var held2 []int64
		require.NoError(t, s.DB().Table("invitations").Where("campaign_id = ? AND holdout", c2.ID).Order("customer_id").Pluck("customer_id", &held2).Error)
		require.Equal(t, held, held2)
	})
}

func TestClaimSettleAndRecover(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		ids := addCustomers(t, s, 30, "cl")
		c := startCampaign(t, s, eventInput("Claims"))

		// A customer who unsubscribes after the freeze is suppressed at claim.
		require.NoError(t, s.SetConsent(ctx, ids[3], campaigns.Unsubscribed, "test"))
		far := time.Now().Add(time.Hour)
		a, err := s.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "A", BatchID: "b1", Limit: 10, Lease: time.Minute, CancelBy: far})
		require.NoError(t, err)
		require.Len(t, a, 10)
		for _, cl := range a {
			require.NotEqual(t, ids[3], cl.CustomerID)
			require.Len(t, cl.Tokens, 3, "rsvp, unsubscribe and check-in links")
			tok, err := s.ResolveToken(ctx, campaigns.TokenRSVP, cl.Tokens[campaigns.TokenRSVP])
			require.NoError(t, err)
			require.Equal(t, cl.ID, *tok.InvitationID)
		}
		_, err = s.ResolveToken(ctx, campaigns.TokenRSVP, a[0].Tokens[campaigns.TokenUnsubscribe])
		require.Equal(t, campaigns.ENOTFOUND, campaigns.ErrorCode(err), "a token of another kind")

		b, err := s.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "B", BatchID: "b2", Limit: 10, Lease: -time.Second, CancelBy: far})
		require.NoError(t, err)
		require.Len(t, b, 10)
		seen := map[int64]bool{}
		for _, cl := range append(a, b...) {
			require.False(t, seen[cl.ID], "no row claimed twice")
			seen[cl.ID] = true
		}
		n, err := s.SettleSent(ctx, campaigns.QueueInvitations, "A", "b1", idsOf(a), "msg-1", false)
		require.NoError(t, err)
		require.EqualValues(t, 10, n)
		// B's lease has expired: its settle does not count.
		n, err = s.SettleSent(ctx, campaigns.QueueInvitations, "B", "b2", idsOf(b), "msg-2", false)
		require.NoError(t, err)
		require.EqualValues(t, 0, n)
		exp, err := s.ExpiredBatches(ctx)
		require.NoError(t, err)
		require.Len(t, exp, 1)
		require.Equal(t, "b2", exp[0].BatchID)
		require.NotNil(t, exp[0].CancelBy)
		n, err = s.TakeOverBatch(ctx, campaigns.QueueInvitations, "b2", "R", time.Minute)
		require.NoError(t, err)
		require.EqualValues(t, 10, n)
		n, err = s.TakeOverBatch(ctx, campaigns.QueueInvitations, "b2", "R2", time.Minute)
		require.NoError(t, err)
		require.EqualValues(t, 0, n, "a batch taken over is no longer expired")
		n, err = s.RequeueBatch(ctx, campaigns.QueueInvitations, "R", "b2")
		require.NoError(t, err)
		require.EqualValues(t, 10, n)

		f := funnelOf(t, s, c.ID)
		require.EqualValues(t, 10, f.Sent)
		require.EqualValues(t, 1, f.Suppressed)
		require.EqualValues(t, 19, f.Pending)

		done, err := s.FinishIfDone(ctx, c.ID)
		require.NoError(t, err)
		require.False(t, done)
		// Pausing stops further claims; nothing sent is touched.
		_, err = s.Pause(ctx, c.ID)
		require.NoError(t, err)
		none, err := s.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "A", BatchID: "b3", Limit: 10, Lease: time.Minute, CancelBy: far})
		require.NoError(t, err)
		require.Empty(t, none)
		c, err = s.Resume(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, campaigns.StatusSending, c.Status)
		rest, err := s.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "A", BatchID: "b4", Limit: 100, Lease: time.Minute, CancelBy: far})
		require.NoError(t, err)
		require.Len(t, rest, 19)
		_, err = s.SettleSent(ctx, campaigns.QueueInvitations, "A", "b4", idsOf(rest), "msg-4", false)
		require.NoError(t, err)
		done, err = s.FinishIfDone(ctx, c.ID)
		require.NoError(t, err)
		require.True(t, done)
		c, err = s.Campaign(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, campaigns.StatusSent, c.Status)
		cu, err := s.Customer(ctx, ids[0])
		require.NoError(t, err)
		require.NotNil(t, cu.LastContactedAt, "sending records the contact for frequency caps")
	})
}

// A run of customers who withdrew after the freeze, longer than a batch,
// is suppressed and the batch is still filled from those after it.
func TestClaimFillsABatchPastWithdrawnCustomers(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		ids := addCustomers(t, s, 30, "wd")
		c := startCampaign(t, s, eventInput("Withdrawn"))
		gone := map[int64]bool{}
		for _, id := range ids[:15] {
			require.NoError(t, s.SetConsent(ctx, id, campaigns.Unsubscribed, "test"))
			gone[id] = true
		}
		// Every nullable column holds a value of its own, so that a claimed
		// row scanned into the wrong fields cannot pass for the stored one.
		require.NoError(t, s.DB().Exec(`UPDATE invitations SET message_id = 'm-' || id, sent_at = created_at, delivered_at = created_at,
			opened_at = created_at, clicked_at = created_at, rsvp_at = created_at, nps_score = 7, nps_at = created_at, nps_comment = 'c-' || id,
			waitlist_seq = id + 1000, followed_up_at = created_at, followed_up_by = 'f-' || id, checked_in_by = 'r-' || id, status_reason = 's-' || id
			WHERE campaign_id = ?`, c.ID).Error)
		far := time.Now().Add(time.Hour)
		got, err := s.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "A", BatchID: "w1", Limit: 10, Lease: time.Minute, CancelBy: far})
		require.NoError(t, err)
		require.Len(t, got, 10)
		// Each claimed row is the row as stored, every column scanned into
		// its field (PostgreSQL scans the claim's rows by hand).
		stored, _, err := s.Invitations(ctx, c.ID, 1, 100)
		require.NoError(t, err)
		byID := map[int64]campaigns.Invitation{}
		for _, inv := range stored {
			byID[inv.ID] = inv
		}
		for _, cl := range got {
			require.False(t, gone[cl.CustomerID], "customer %d withdrew", cl.CustomerID)
			require.Equal(t, campaigns.InvSending, cl.Status)
			cu, err := s.Customer(ctx, cl.CustomerID)
			require.NoError(t, err)
			require.Equal(t, cu.Name, cl.Name)
			want, ok := byID[cl.ID]
			require.True(t, ok, "claimed %d, not stored", cl.ID)
			require.NotNil(t, cl.LeaseOwner)
			require.NotNil(t, cl.BatchID)
			require.NotNil(t, cl.LeaseUntil)
			require.NotNil(t, cl.CancelBy)
			require.NotNil(t, want.LeaseUntil)
			require.NotNil(t, want.CancelBy)
			require.Equal(t, "A", *cl.LeaseOwner)
			require.Equal(t, "w1", *cl.BatchID)
			require.Equal(t, 1, cl.Attempts)
			require.NotNil(t, cl.MessageID)
			require.Equal(t, fmt.Sprintf("m-%d", cl.ID), *cl.MessageID)
			require.True(t, cl.LeaseUntil.Equal(*want.LeaseUntil) && cl.CancelBy.Equal(*want.CancelBy) &&
				cl.CreatedAt.Equal(want.CreatedAt) && cl.UpdatedAt.Equal(want.UpdatedAt), "claimed %+v, stored %+v", cl.Invitation, want)
			cl.LeaseUntil, cl.CancelBy, want.LeaseUntil, want.CancelBy = nil, nil, nil, nil
			cl.CreatedAt, cl.UpdatedAt, want.CreatedAt, want.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			require.Equal(t, want, cl.Invitation)
		}
		f := funnelOf(t, s, c.ID)
		require.EqualValues(t, 15, f.Suppressed)
		require.EqualValues(t, 15, f.Pending, "the 10 being sent and the 5 left")
	})
}

func TestGiftCodesOnePerRecipient(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		addCustomers(t, s, 12, "gc")
		in := campaigns.CampaignInput{Kind: campaigns.KindGift, Name: "Thanks", TimeZone: "America/Chicago",
			Filter: campaigns.Filter{Metros: []string{"chicago"}},
			Gift:   &campaigns.GiftFields{Type: "gift_card", FaceValueCents: 1000, UnitCostCents: 1000}}
		c, err := s.CreateCampaign(ctx, in, "t")
		require.NoError(t, err)
		require.Equal(t, "codes", c.Fulfilment)
		counts, err := s.AddGiftCodes(ctx, c.ID, []string{"A-1", "A-2", "A-2", " A-3 "})
		require.NoError(t, err)
		require.EqualValues(t, 3, counts.Added)
		_, err = s.AddGiftCodes(ctx, c.ID, []string{"ok", " "})
		require.Equal(t, campaigns.EINVALID, campaigns.ErrorCode(err))
		_, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true})
		require.Error(t, err)
		require.Contains(t, err.Error(), "add 9 more")
		var codes []string
		for i := 0; i < 20; i++ {
			codes = append(codes, fmt.Sprintf("B-%02d", i))
		}
		counts, err = s.AddGiftCodes(ctx, c.ID, codes)
		require.NoError(t, err)
		require.EqualValues(t, 23, counts.Available)
		_, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true})
		require.NoError(t, err)
		_, err = s.Start(ctx, c.ID)
		require.NoError(t, err)
		cl, err := s.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "A", BatchID: "g1", Limit: 100, Lease: time.Minute, CancelBy: time.Now().Add(time.Hour)})
		require.NoError(t, err)
		require.Len(t, cl, 12)
		got := map[string]bool{}
		for _, x := range cl {
			require.NotEmpty(t, x.GiftCode)
			require.False(t, got[x.GiftCode], "a code goes to one recipient")
			got[x.GiftCode] = true
		}
		counts, err = s.GiftCodeCounts(ctx, c.ID)
		require.NoError(t, err)
		require.EqualValues(t, 12, counts.Assigned)
	})
}

// Codes removed from the pool after the start check leave some recipients
// without one: those fail, are not handed out to be emailed, and the rest
// of the batch is sent and settled as usual.
func TestGiftPoolRunningDryFailsOnlyThoseWithoutACode(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		addCustomers(t, s, 4, "dry")
		c, err := s.CreateCampaign(ctx, campaigns.CampaignInput{Kind: campaigns.KindGift, Name: "Dry", TimeZone: "America/Chicago",
			Filter: campaigns.Filter{Metros: []string{"chicago"}},
			Gift:   &campaigns.GiftFields{Type: "gift_card", FaceValueCents: 1000, UnitCostCents: 1000}}, "t")
		require.NoError(t, err)
		_, err = s.AddGiftCodes(ctx, c.ID, []string{"D-1", "D-2", "D-3", "D-4"})
		require.NoError(t, err)
		_, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true})
		require.NoError(t, err)
		_, err = s.Start(ctx, c.ID)
		require.NoError(t, err)
		require.NoError(t, s.DB().Exec("DELETE FROM gift_codes WHERE campaign_id = ? AND code IN ('D-1', 'D-2')", c.ID).Error)

		cl, err := s.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "A", BatchID: "d1", Limit: 10, Lease: time.Minute, CancelBy: time.Now().Add(time.Hour)})
		require.NoError(t, err)
		require.Len(t, cl, 2, "only those with a code are sent")
		var ids []int64
		for _, x := range cl {
			require.NotEmpty(t, x.GiftCode)
			ids = append(ids, x.ID)
		}
		n, err := s.SettleSent(ctx, campaigns.QueueInvitations, "A", "d1", ids, "m", false)
		require.NoError(t, err)
		require.EqualValues(t, 2, n)
		f := funnelOf(t, s, c.ID)
		require.EqualValues(t, 2, f.Sent)
		require.EqualValues(t, 2, f.Failed)
	})
}

// funnelOf reads a campaign afresh and counts its funnel.
func funnelOf(t *testing.T, s *campaigns.Store, id int64) campaigns.Funnel {
	t.Helper()
	c, err := s.Campaign(context.Background(), id)
	require.NoError(t, err)
	f, err := s.Funnel(context.Background(), c)
	require.NoError(t, err)
	return f
}

// idsOf is the queue ids of claims.
func idsOf(cs []campaigns.Claim) []int64 {
	var out []int64
	for _, c := range cs {
		out = append(out, c.QueueID)
	}
	return out
}

// A batch's lease is read from its first row, or from any other still
// leased when that one was settled otherwise meanwhile (refused for good
// here); a batch whose lease has run out settles nothing.
func TestSettleFindsTheLeaseWhenTheFirstRowIsGone(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		addCustomers(t, s, 4, "sl")
		c := startCampaign(t, s, eventInput("Settle lease"))
		claim := func(batch string, limit int, lease time.Duration) []int64 {
			cl, err := s.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "A", BatchID: batch, Limit: limit, Lease: lease, CancelBy: time.Now().Add(time.Hour)})
			require.NoError(t, err)
			require.Len(t, cl, limit)
			return idsOf(cl)
		}
		ids := claim("s1", 3, time.Minute)
		require.NoError(t, s.SettleFailed(ctx, campaigns.QueueInvitations, "A", "s1", map[int64]string{ids[0]: "refused"}))
		n, err := s.SettleSent(ctx, campaigns.QueueInvitations, "A", "s1", ids, "m1", false)
		require.NoError(t, err)
		require.EqualValues(t, 2, n, "the rest of the batch settles")

		late := claim("s2", 1, -time.Second) // its lease already over
		n, err = s.SettleSent(ctx, campaigns.QueueInvitations, "A", "s2", late, "m2", false)
		require.NoError(t, err)
		require.Zero(t, n, "a lost lease is left to recovery")

		f := funnelOf(t, s, c.ID)
		require.EqualValues(t, 2, f.Sent)
		require.EqualValues(t, 1, f.Failed)
	})
}

func TestEmailEventsApplyOnceInAnyOrder(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		ids := addCustomers(t, s, 3, "ev")
		c, err := s.CreateCampaign(ctx, eventInput("Events"), "t")
		require.NoError(t, err)
		_, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true})
		require.NoError(t, err)
		_, err = s.Start(ctx, c.ID)
		require.NoError(t, err)
		cl, err := s.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "A", BatchID: "e1", Limit: 10, Lease: time.Minute, CancelBy: time.Now().Add(time.Hour)})
		require.NoError(t, err)
		var inv []int64
		for _, x := range cl {
			inv = append(inv, x.ID)
		}
		_, err = s.SettleSent(ctx, campaigns.QueueInvitations, "A", "e1", inv, "m", false)
		require.NoError(t, err)
		now := time.Now()
		evs := []campaigns.EmailEvent{
			{SGEventID: "e-3", InvitationID: &inv[1], Email: cl[1].Email, Event: "delivered", OccurredAt: now.Add(2 * time.Second)},
			{SGEventID: "e-2", InvitationID: &inv[1], Email: cl[1].Email, Event: "bounce", Reason: "550 no such user", OccurredAt: now.Add(time.Second)},
			{SGEventID: "e-1", InvitationID: &inv[0], Email: cl[0].Email, Event: "delivered", OccurredAt: now},
			{SGEventID: "e-4", InvitationID: &inv[2], Email: cl[2].Email, Event: "spamreport", OccurredAt: now},
			{SGEventID: "e-5", InvitationID: &inv[0], Email: cl[0].Email, Event: "open", OccurredAt: now},
		}
		for round := 0; round < 3; round++ {
			n, err := s.ApplyEmailEvents(ctx, append([]campaigns.EmailEvent(nil), evs...))
			require.NoError(t, err)
			if round == 0 {
				require.Equal(t, 5, n)
			} else {
				require.Equal(t, 0, n, "repeats change nothing")
			}
		}
		f := funnelOf(t, s, c.ID)
		require.EqualValues(t, 1, f.Delivered)
		require.EqualValues(t, 1, f.Failed, "a bounce is final whatever the order")
		byCustomer := map[int64]campaigns.ConsentState{}
		for _, id := range ids {
			cu, err := s.Customer(ctx, id)
			require.NoError(t, err)
			byCustomer[id] = cu.ConsentState
		}
		require.Contains(t, []campaigns.ConsentState{campaigns.Bounced, campaigns.SpamReported}, byCustomer[cl[1].CustomerID])
		require.Equal(t, campaigns.Bounced, byCustomer[cl[1].CustomerID])
		require.Equal(t, campaigns.SpamReported, byCustomer[cl[2].CustomerID])
	})
}

// A claim can start part-way (each of a worker's senders starts at its
// own place, so that they do not queue on each other's locked rows); the
// range of ids still waiting says where.
func TestClaimFromAnID(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		addCustomers(t, s, 6, "cf")
		c := startCampaign(t, s, eventInput("Claim from"))
		lo, hi, err := s.PendingRange(ctx, c.ID)
		require.NoError(t, err)
		require.EqualValues(t, 5, hi-lo)
		o := campaigns.ClaimOptions{Worker: "A", BatchID: "c1", Limit: 10, Lease: time.Minute, CancelBy: time.Now().Add(time.Hour), From: lo + 4}
		cl, err := s.Claim(ctx, c.ID, o)
		require.NoError(t, err)
		require.Len(t, cl, 2)
		require.Equal(t, lo+4, cl[0].ID)
		require.Equal(t, hi, cl[1].ID)
		o.BatchID = "c2"
		cl, err = s.Claim(ctx, c.ID, o)
		require.NoError(t, err)
		require.Empty(t, cl, "nothing waits from there on")
		lo2, hi2, err := s.PendingRange(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, []int64{lo, lo + 3}, []int64{lo2, hi2})
		o.From, o.BatchID = 0, "c3"
		cl, err = s.Claim(ctx, c.ID, o)
		require.NoError(t, err)
		require.Len(t, cl, 4)
		lo3, hi3, err := s.PendingRange(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, []int64{0, 0}, []int64{lo3, hi3}, "none left")
	})
}

// Within one batch only the first delivery, open and click of an
// invitation counts, as if applied one by one in order; an invitation that
// the batch also bounces keeps its events' order: delivered first is
// credited and then failed, bounced first is neither.
func TestEmailEventsFirstOfEachKindCounts(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		addCustomers(t, s, 4, "fk")
		c := startCampaign(t, s, eventInput("First counts"))
		cl, err := s.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "A", BatchID: "f1", Limit: 10, Lease: time.Minute, CancelBy: time.Now().Add(time.Hour)})
		require.NoError(t, err)
		require.Len(t, cl, 4)
		inv := make([]int64, len(cl))
		for i, x := range cl {
			inv[i] = x.ID
		}
		_, err = s.SettleSent(ctx, campaigns.QueueInvitations, "A", "f1", inv, "m", false)
		require.NoError(t, err)
		t0 := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
		at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
		evs := []campaigns.EmailEvent{
			{SGEventID: "k1", InvitationID: &inv[0], Email: cl[0].Email, Event: "delivered", OccurredAt: at(5)},
			{SGEventID: "k2", InvitationID: &inv[0], Email: cl[0].Email, Event: "open", OccurredAt: at(9)},
			{SGEventID: "k3", InvitationID: &inv[0], Email: cl[0].Email, Event: "delivered", OccurredAt: at(1)},
			{SGEventID: "k4", InvitationID: &inv[0], Email: cl[0].Email, Event: "open", OccurredAt: at(2)},
			{SGEventID: "k5", InvitationID: &inv[0], Email: cl[0].Email, Event: "click", OccurredAt: at(7)},
			{SGEventID: "k6", InvitationID: &inv[0], Email: cl[0].Email, Event: "click", OccurredAt: at(3)},
			{SGEventID: "k7", InvitationID: &inv[1], Email: cl[1].Email, Event: "delivered", OccurredAt: at(1)},
			{SGEventID: "k8", InvitationID: &inv[1], Email: cl[1].Email, Event: "bounce", Reason: "550", OccurredAt: at(2)},
			{SGEventID: "k9", InvitationID: &inv[2], Email: cl[2].Email, Event: "bounce", Reason: "550", OccurredAt: at(1)},
			{SGEventID: "k10", InvitationID: &inv[2], Email: cl[2].Email, Event: "delivered", OccurredAt: at(2)},
			{SGEventID: "k11", Event: "delivered", Email: "someone@elsewhere.example.com", OccurredAt: at(1)},
			{SGEventID: "k12", InvitationID: ptr(int64(1 << 40)), Event: "open", OccurredAt: at(1)},
			{SGEventID: "k13", InvitationID: &inv[3], Email: cl[3].Email, Event: "processed", OccurredAt: at(1)},
		}
		n, err := s.ApplyEmailEvents(ctx, evs)
		require.NoError(t, err)
		require.Equal(t, len(evs), n)

		var got []campaigns.Invitation
		require.NoError(t, s.DB().Where("id IN ?", inv).Order("id").Find(&got).Error)
		require.Equal(t, campaigns.InvDelivered, got[0].Status)
		require.True(t, at(5).Equal(*got[0].DeliveredAt), "the first delivery in the batch, not the earliest")
		require.True(t, at(9).Equal(*got[0].OpenedAt))
		require.True(t, at(7).Equal(*got[0].ClickedAt))
		require.Equal(t, campaigns.InvFailed, got[1].Status)
		require.Equal(t, campaigns.InvFailed, got[2].Status)
		require.Nil(t, got[2].DeliveredAt)
		require.Equal(t, campaigns.InvSent, got[3].Status)

		credited := map[int64]int{}
		for i, x := range cl {
			entries, err := s.Ledger(ctx, x.CustomerID)
			require.NoError(t, err)
			for _, e := range entries {
				if e.Rule == "delivered" {
					credited[int64(i)]++
				}
			}
		}
		require.Equal(t, map[int64]int{0: 1, 1: 1}, credited, "delivered before its bounce is credited; after it, not")

		var stored int64
		require.NoError(t, s.DB().Model(&campaigns.EmailEvent{}).Where("sg_event_id LIKE 'k%'").Count(&stored).Error)
		require.EqualValues(t, len(evs), stored)
		var orphan campaigns.EmailEvent
		require.NoError(t, s.DB().Take(&orphan, "sg_event_id = 'k12'").Error)
		require.Nil(t, orphan.InvitationID, "an unknown invitation is recorded without it")
	})
}

// A guest who unsubscribes (by their link) after their invitation was
// claimed for a batch but before the batch goes to SendGrid gets nothing:
// the sender's last check drops them and they are counted as suppressed.
func TestUnsubscribingBetweenClaimAndSendSuppresses(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		addCustomers(t, s, 5, "us")
		c, err := s.CreateCampaign(ctx, eventInput("Late unsubscribe"), "t")
		require.NoError(t, err)
		_, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true})
		require.NoError(t, err)
		_, err = s.Start(ctx, c.ID)
		require.NoError(t, err)
		cl, err := s.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "A", BatchID: "b1", Limit: 10, Lease: time.Minute, CancelBy: time.Now().Add(time.Hour)})
		require.NoError(t, err)
		require.Len(t, cl, 5)

		// The second guest clicks the unsubscribe link of this very email.
		_, err = s.Unsubscribe(ctx, cl[1].Tokens[campaigns.TokenUnsubscribe], "link")
		require.NoError(t, err)

		ids := make([]int64, len(cl))
		for i := range cl {
			ids[i] = cl[i].QueueID
		}
		gone, err := s.SuppressWithdrawn(ctx, campaigns.QueueInvitations, "A", "b1", cl)
		require.NoError(t, err)
		require.Equal(t, []int64{cl[1].QueueID}, gone)
		rest := append(append([]int64{}, ids[:1]...), ids[2:]...)
		n, err := s.SettleSent(ctx, campaigns.QueueInvitations, "A", "b1", rest, "m", false)
		require.NoError(t, err)
		require.EqualValues(t, 4, n)
		f := funnelOf(t, s, c.ID)
		require.EqualValues(t, 4, f.Sent)
		require.EqualValues(t, 1, f.Suppressed)
	})
}

// A send records each customer's last contact; frequency caps and the
// customer's page read it; a later send moves it on, an older settle
// never moves it back.
func TestSendsRecordLastContact(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		tag := time.Now().UnixNano() % 1_000_000
		metro := fmt.Sprintf("Contactville %d", tag)
		var ids []int64
		for i := 0; i < 3; i++ {
			r, err := s.UpsertCustomer(ctx, campaigns.CustomerInput{Name: fmt.Sprint("Contact ", i),
				Email: fmt.Sprintf("contact%d-%d@example.com", tag, i), MetroArea: &metro},
				campaigns.UpsertMeta{Actor: "t", Source: "t", Rule: campaigns.RuleAPI})
			require.NoError(t, err)
			ids = append(ids, r.Customer.ID)
		}
		f := campaigns.Filter{Metros: []string{metro}}
		capped := campaigns.Filter{Metros: []string{metro}, NotContactedWithinDays: ptr(7)}
		t0 := time.Now().UTC().Truncate(time.Second)
		send := func(at time.Time, name string) {
			t.Helper()
			s.SetClock(func() time.Time { return at })
			defer s.SetClock(time.Now)
			c, err := s.CreateCampaign(ctx, campaigns.CampaignInput{Kind: campaigns.KindGift, Name: name, TimeZone: "UTC",
				Filter: f, Gift: &campaigns.GiftFields{Type: "free_upgrade", Fulfilment: "manual"}}, "t")
			require.NoError(t, err)
			_, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true})
			require.NoError(t, err)
			_, err = s.Start(ctx, c.ID)
			require.NoError(t, err)
			cl, err := s.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "w", BatchID: name, Limit: 10, Lease: time.Hour, CancelBy: at.Add(time.Hour)})
			require.NoError(t, err)
			require.Len(t, cl, 3)
			var inv []int64
			for _, x := range cl {
				inv = append(inv, x.ID)
			}
			n, err := s.SettleSent(ctx, campaigns.QueueInvitations, "w", name, inv, "m-"+name, false)
			require.NoError(t, err)
			require.EqualValues(t, 3, n)
		}
		p, err := s.PreviewAudience(ctx, capped, 10)
		require.NoError(t, err)
		require.EqualValues(t, 3, p.Count, "never contacted")
		require.Nil(t, p.Sample[0].LastContactedAt)

		send(t0.Add(-time.Hour), fmt.Sprint("first", tag))
		p, err = s.PreviewAudience(ctx, capped, 10)
		require.NoError(t, err)
		require.EqualValues(t, 0, p.Count, "contacted an hour ago: held back by a 7-day cap")
		p, err = s.PreviewAudience(ctx, f, 10)
		require.NoError(t, err)
		require.EqualValues(t, 3, p.Count)
		require.NotNil(t, p.Sample[0].LastContactedAt)
		require.True(t, p.Sample[0].LastContactedAt.Equal(t0.Add(-time.Hour)))

		send(t0, fmt.Sprint("second", tag))
		send(t0.Add(-48*time.Hour), fmt.Sprint("late", tag)) // a settle carrying an older time
		for _, id := range ids {
			cu, err := s.Customer(ctx, id)
			require.NoError(t, err)
			require.NotNil(t, cu.LastContactedAt)
			require.True(t, cu.LastContactedAt.Equal(t0), "the latest contact wins: %v", cu.LastContactedAt)
		}
		page, err := s.ListCustomers(ctx, campaigns.CustomerQuery{Metros: []string{metro}})
		require.NoError(t, err)
		require.Len(t, page.Items, 3)
		for _, c := range page.Items {
			require.NotNil(t, c.LastContactedAt, "the list shows the last contact too")
		}
	})
}

// A guest met at the door before the invitations went out keeps their
// walk-in invitation; the freeze adds everyone else once.
func TestFreezeAfterAWalkInSkipsThem(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		ids := addCustomers(t, s, 3, "walkfirst")
		c, err := s.CreateCampaign(ctx, eventInput("Door first"), "t")
		require.NoError(t, err)
		_, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true})
		require.NoError(t, err)
		_, err = s.CheckIn(ctx, c.ID, campaigns.CheckinTarget{Name: "walkfirst 1", Email: "walkfirst1@example.com"}, nil)
		require.NoError(t, err)
		res, err := s.Start(ctx, c.ID)
		require.NoError(t, err)
		require.True(t, res.Started)
		require.EqualValues(t, 2, res.Frozen, "the walk-in was invited already")
		invs, _, err := s.Invitations(ctx, c.ID, 1, 10)
		require.NoError(t, err)
		require.Len(t, invs, 3)
		for _, inv := range invs {
			require.Equal(t, inv.CustomerID == ids[1], inv.WalkIn, "customer %d", inv.CustomerID)
		}
	})
}

// Walk-ins met at the door before the start are not part of the audience
// the holdout is drawn from: an attended walk-in is never held out, and
// the holdout is its share of the frozen audience alone.
func TestHoldoutIsNotDrawnFromWalkIns(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		addCustomers(t, s, 5, "door")
		in := eventInput("Door and holdout")
		in.HoldoutPercent = 50
		c, err := s.CreateCampaign(ctx, in, "t")
		require.NoError(t, err)
		_, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true})
		require.NoError(t, err)
		// Three of five at the door first: drawn with them, half of five
		// (3) would hold out at least one walk-in.
		for i := 0; i < 3; i++ {
			_, err = s.CheckIn(ctx, c.ID, campaigns.CheckinTarget{Name: fmt.Sprintf("door %d", i), Email: fmt.Sprintf("door%d@example.com", i)}, nil)
			require.NoError(t, err)
		}
		res, err := s.Start(ctx, c.ID)
		require.NoError(t, err)
		require.EqualValues(t, 2, res.Frozen)
		require.EqualValues(t, 1, res.Holdout, "half of the two frozen, rounded")
		invs, _, err := s.Invitations(ctx, c.ID, 1, 10)
		require.NoError(t, err)
		require.Len(t, invs, 5)
		held := 0
		for _, inv := range invs {
			require.False(t, inv.WalkIn && inv.Holdout, "walk-in %s is held out", inv.Email)
			if inv.Holdout {
				held++
			}
		}
		require.Equal(t, 1, held)
	})
}

// A walk-in written while the invitations go out is waited for, and the
// freeze skips them rather than failing on their key.
func TestFreezeWaitsForAWalkInBeingWritten(t *testing.T) {
	if os.Getenv("TEST_DATABASE_URL") == "" {
		t.Skip("PostgreSQL only: SQLite has one writer")
	}
	ctx := context.Background()
	s := campaignstest.Open(t, campaignstest.Postgres)
	ids := addCustomers(t, s, 3, "midwalk")
	c, err := s.CreateCampaign(ctx, eventInput("Door during the send"), "t")
	require.NoError(t, err)
	_, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true})
	require.NoError(t, err)
	door := s.DB().Begin() // a walk-in's transaction, not yet committed
	require.NoError(t, door.Error)
	defer door.Rollback()
	require.NoError(t, door.Exec(`INSERT INTO invitations (campaign_id, customer_id, email, run, status, status_reason, rsvp, walk_in, created_at, updated_at)
		VALUES (?, ?, 'midwalk1@example.com', 1, 'suppressed', 'walk-in: never sent', 'none', true, now(), now())`, c.ID, ids[1]).Error)
	started := make(chan error, 1)
	go func() {
		res, err := s.Start(ctx, c.ID)
		if err == nil && res.Frozen != 2 {
			err = fmt.Errorf("froze %d, want 2", res.Frozen)
		}
		started <- err
	}()
	waitForLock(t, s, `%FROM "campaigns"%`) // the freeze waits for the door
	require.NoError(t, door.Commit().Error)
	require.NoError(t, <-started)
	invs, _, err := s.Invitations(ctx, c.ID, 1, 10)
	require.NoError(t, err)
	require.Len(t, invs, 3)
}

// Two webhook requests at once whose events cross (the first delivers
// half the guests and opens the other half, the second the reverse) both
// apply: each locks the invitations it touches in id order before it
// moves any, so neither holds one the other took first. Before, each kind
// locked its own rows in turn, and PostgreSQL aborted one of such a pair
// as a deadlock (SendGrid then sends that batch again).
func TestCrossingWebhookBatchesDoNotDeadlock(t *testing.T) {
	if len(campaignstest.Available(t)) < 2 {
		t.Skip("needs PostgreSQL: SQLite takes one writer at a time")
	}
	s := campaignstest.Open(t, campaignstest.Postgres)
	ctx := context.Background()
	_, err := s.Seed(ctx, campaigns.SeedOptions{Customers: 600, Metros: 1, Seed: 3, Actor: "t", Tag: "dl"})
	require.NoError(t, err)
	in := eventInput("Crossing webhooks")
	in.Event.Capacity = 1000
	c := startCampaign(t, s, in)
	cls, err := s.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "A", BatchID: "d1", Limit: 1000, Lease: time.Hour, CancelBy: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	require.Greater(t, len(cls), 400)
	ids := make([]int64, len(cls))
	emailOf := map[int64]string{}
	for i, cl := range cls {
		ids[i] = cl.ID
		emailOf[cl.ID] = cl.Email
	}
	_, err = s.SettleSent(ctx, campaigns.QueueInvitations, "A", "d1", ids, "m", false)
	require.NoError(t, err)
	half := len(ids) / 2
	batch := func(round int, name string, delivered, opened []int64) []campaigns.EmailEvent {
		var evs []campaigns.EmailEvent
		for _, id := range delivered {
			evs = append(evs, campaigns.EmailEvent{SGEventID: fmt.Sprintf("%d-%s-d-%d", round, name, id), InvitationID: ptr(id), Email: emailOf[id], Event: campaigns.EvDelivered, OccurredAt: time.Now()})
		}
		for _, id := range opened {
			evs = append(evs, campaigns.EmailEvent{SGEventID: fmt.Sprintf("%d-%s-o-%d", round, name, id), InvitationID: ptr(id), Email: emailOf[id], Event: campaigns.EvOpen, OccurredAt: time.Now()})
		}
		return evs
	}
	for round := range 3 {
		require.NoError(t, s.DB().Exec("UPDATE invitations SET status = 'sent', delivered_at = NULL, opened_at = NULL WHERE campaign_id = ?", c.ID).Error)
		a := batch(round, "a", ids[:half], ids[half:])
		b := batch(round, "b", ids[half:], ids[:half])
		start := make(chan struct{})
		errs := make(chan error, 2)
		for _, evs := range [][]campaigns.EmailEvent{a, b} {
			go func() {
				<-start
				_, err := s.ApplyEmailEvents(ctx, evs)
				errs <- err
			}()
		}
		close(start)
		require.NoError(t, <-errs, "round %d", round)
		require.NoError(t, <-errs, "round %d", round)
		var moved int64
		require.NoError(t, s.DB().Model(&campaigns.Invitation{}).
			Where("campaign_id = ? AND status = 'delivered' AND opened_at IS NOT NULL", c.ID).Count(&moved).Error)
		require.EqualValues(t, len(ids), moved, "round %d: every guest delivered and opened", round)
	}
}

// A one-off campaign paused mid-send is resumed, not scheduled again:
// another start would freeze its audience a second time (a second run,
// newly qualified customers added, a separate holdout). One paused before
// it started, and a standing one between runs, can still be scheduled.
func TestStartedOneOffCampaignIsResumedNotRescheduled(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		addCustomers(t, s, 5, "rs")
		c := startCampaign(t, s, eventInput("Paused mid-send"))
		_, err := s.Pause(ctx, c.ID)
		require.NoError(t, err)
		_, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{SendAt: ptr(time.Now().Add(time.Hour))})
		require.Equal(t, campaigns.ECONFLICT, campaigns.ErrorCode(err), "%v", err)
		require.Contains(t, err.Error(), "resume it")
		cur, err := s.Campaign(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, campaigns.StatusPaused, cur.Status, "nothing changed")
		require.Equal(t, 1, cur.Runs)
		cur, err = s.Resume(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, campaigns.StatusSending, cur.Status)

		early, err := s.CreateCampaign(ctx, eventInput("Paused before the start"), "t")
		require.NoError(t, err)
		_, err = s.Schedule(ctx, early.ID, campaigns.ScheduleInput{SendAt: ptr(time.Now().Add(time.Hour))})
		require.NoError(t, err)
		_, err = s.Pause(ctx, early.ID)
		require.NoError(t, err)
		early, err = s.Schedule(ctx, early.ID, campaigns.ScheduleInput{SendAt: ptr(time.Now().Add(2 * time.Hour))})
		require.NoError(t, err)
		require.Equal(t, campaigns.StatusScheduled, early.Status)

		gift, err := s.CreateCampaign(ctx, campaigns.CampaignInput{Kind: campaigns.KindGift, Name: "Monthly", TimeZone: "America/Chicago",
			Filter: campaigns.Filter{Metros: []string{"Chicago"}}, Gift: &campaigns.GiftFields{Type: "free_upgrade", Fulfilment: "manual"}}, "t")
		require.NoError(t, err)
		_, err = s.Schedule(ctx, gift.ID, campaigns.ScheduleInput{Now: true})
		require.NoError(t, err)
		_, err = s.Start(ctx, gift.ID)
		require.NoError(t, err)
		_, err = s.Schedule(ctx, gift.ID, campaigns.ScheduleInput{Cron: "0 9 1 * *"})
		require.Equal(t, campaigns.ECONFLICT, campaigns.ErrorCode(err), "a sending campaign cannot be scheduled")
		_, err = s.Pause(ctx, gift.ID)
		require.NoError(t, err)
		_, err = s.Schedule(ctx, gift.ID, campaigns.ScheduleInput{Cron: "0 9 1 * *"})
		require.Equal(t, campaigns.ECONFLICT, campaigns.ErrorCode(err), "a one-off gift that started is resumed too")

		standing, err := s.CreateCampaign(ctx, campaigns.CampaignInput{Kind: campaigns.KindGift, Name: "Standing", TimeZone: "America/Chicago",
			Filter: campaigns.Filter{Metros: []string{"Chicago"}}, Gift: &campaigns.GiftFields{Type: "free_upgrade", Fulfilment: "manual"}}, "t")
		require.NoError(t, err)
		_, err = s.Schedule(ctx, standing.ID, campaigns.ScheduleInput{Cron: "0 9 1 * *"})
		require.NoError(t, err)
		_, err = s.Start(ctx, standing.ID)
		require.NoError(t, err)
		_, err = s.Pause(ctx, standing.ID)
		require.NoError(t, err)
		standing, err = s.Schedule(ctx, standing.ID, campaigns.ScheduleInput{Cron: "0 9 15 * *"})
		require.NoError(t, err, "a standing campaign takes a new spec for its next runs")
		require.Equal(t, campaigns.StatusScheduled, standing.Status)
	})
}

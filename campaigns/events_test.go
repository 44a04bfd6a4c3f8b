package campaigns_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
)

// sentInvitations starts an event for n new customers and records every
// invitation as sent, as a worker would.
func sentInvitations(t *testing.T, s *campaigns.Store, n int, prefix string) []campaigns.Claim {
	t.Helper()
	ctx := context.Background()
	addCustomers(t, s, n, prefix)
	c := startCampaign(t, s, eventInput("Events "+prefix))
	cl, err := s.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "A", BatchID: prefix, Limit: 10, Lease: time.Minute, CancelBy: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	require.Len(t, cl, n)
	_, err = s.SettleSent(ctx, campaigns.QueueInvitations, "A", prefix, idsOf(cl), "m", false)
	require.NoError(t, err)
	return cl
}

func invitationByID(t *testing.T, s *campaigns.Store, id int64) campaigns.Invitation {
	t.Helper()
	var inv campaigns.Invitation
	require.NoError(t, s.DB().Take(&inv, id).Error)
	return inv
}

func consentOf(t *testing.T, s *campaigns.Store, id int64) campaigns.ConsentState {
	t.Helper()
	cu, err := s.Customer(context.Background(), id)
	require.NoError(t, err)
	return cu.ConsentState
}

// Another system on the same SendGrid account (a staging copy of Rapport,
// another app) may put a number in custom_args that is one of our
// invitation ids. Its events are for other addresses: they are recorded,
// without the invitation, and move neither the invitation nor our
// customer. The address is compared without regard to case.
func TestEmailEventForAnotherAddressIsNotOurs(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		cl := sentInvitations(t, s, 3, "fe")
		foreign := "someone@staging.other.example"
		evs := []campaigns.EmailEvent{
			{SGEventID: "f1", InvitationID: &cl[0].ID, Email: foreign, Event: campaigns.EvBounce, Reason: "550 no such user", OccurredAt: time.Now()},
			{SGEventID: "f2", InvitationID: &cl[0].ID, Email: foreign, Event: campaigns.EvDelivered, OccurredAt: time.Now()},
			{SGEventID: "f3", InvitationID: &cl[1].ID, Email: foreign, Event: campaigns.EvSpamReport, OccurredAt: time.Now()},
			{SGEventID: "f4", InvitationID: &cl[1].ID, Email: foreign, Event: campaigns.EvOpen, OccurredAt: time.Now()},
			{SGEventID: "f5", InvitationID: &cl[2].ID, Event: campaigns.EvUnsubscribe, OccurredAt: time.Now()}, // no address at all
			// ours, the address in another case
			{SGEventID: "f6", InvitationID: &cl[2].ID, Email: strings.ToUpper(cl[2].Email), Event: campaigns.EvDelivered, OccurredAt: time.Now()},
		}
		n, err := s.ApplyEmailEvents(ctx, evs)
		require.NoError(t, err)
		require.Equal(t, len(evs), n, "every new event is recorded")
		n, err = s.ApplyEmailEvents(ctx, evs)
		require.NoError(t, err)
		require.Zero(t, n, "and only once")

		for _, x := range cl[:2] {
			inv := invitationByID(t, s, x.ID)
			require.Equal(t, campaigns.InvSent, inv.Status, "invitation %d", x.ID)
			require.Nil(t, inv.OpenedAt)
			require.Equal(t, campaigns.Subscribed, consentOf(t, s, x.CustomerID), "customer of invitation %d", x.ID)
		}
		require.Equal(t, campaigns.InvDelivered, invitationByID(t, s, cl[2].ID).Status)
		require.Equal(t, campaigns.Subscribed, consentOf(t, s, cl[2].CustomerID), "an event without an address is not taken as ours")

		var kept []campaigns.EmailEvent
		require.NoError(t, s.DB().Where("sg_event_id IN ?", []string{"f1", "f5", "f6"}).Order("sg_event_id").Find(&kept).Error)
		require.Len(t, kept, 3)
		require.Nil(t, kept[0].InvitationID, "recorded without our invitation")
		require.Nil(t, kept[1].InvitationID)
		require.Equal(t, cl[2].ID, *kept[2].InvitationID)
	})
}

// Follow-ups (reminders, seats, updates, surveys) carry their invitation's
// id and go only to guests who answered or came. A bounce of one records
// the customer as bounced but does not fail the invitation: the guest
// answered it, so it reached them. A bounce of an invitation nobody
// answered still fails it, after "delivered" too.
func TestFollowupBounceKeepsAnsweredInvitation(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		cl := sentInvitations(t, s, 3, "fb")
		for i, x := range cl {
			_, err := s.ApplyEmailEvents(ctx, []campaigns.EmailEvent{{SGEventID: "d" + x.Email, InvitationID: &cl[i].ID,
				Email: x.Email, Event: campaigns.EvDelivered, OccurredAt: time.Now()}})
			require.NoError(t, err)
		}
		require.NoError(t, s.DB().Exec("UPDATE invitations SET rsvp = 'yes' WHERE id = ?", cl[0].ID).Error)
		require.NoError(t, s.DB().Exec("UPDATE invitations SET attended = ? WHERE id = ?", true, cl[1].ID).Error)
		for i, x := range cl {
			_, err := s.ApplyEmailEvents(ctx, []campaigns.EmailEvent{{SGEventID: "b" + x.Email, InvitationID: &cl[i].ID,
				Email: x.Email, Event: campaigns.EvBounce, Reason: "550 mailbox closed", OccurredAt: time.Now()}})
			require.NoError(t, err)
		}
		for i, want := range []campaigns.InvitationStatus{campaigns.InvDelivered, campaigns.InvDelivered, campaigns.InvFailed} {
			require.Equal(t, want, invitationByID(t, s, cl[i].ID).Status, "invitation %d", i)
			require.Equal(t, campaigns.Bounced, consentOf(t, s, cl[i].CustomerID), "customer %d", i)
		}
	})
}

// A bounce reason is kept to 500 bytes on the invitation and the customer.
// Cut inside a character, PostgreSQL refused the text and the whole batch
// of events with it; the cut falls between characters.
func TestLongBounceReasonIsCutBetweenCharacters(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		cl := sentInvitations(t, s, 1, "lr")
		// "bounce: " and 491 letters are 499 bytes: the é straddles the 500th.
		reason := strings.Repeat("x", 491) + "é: mailbox unavailable"
		_, err := s.ApplyEmailEvents(ctx, []campaigns.EmailEvent{{SGEventID: "lr1", InvitationID: &cl[0].ID, Email: cl[0].Email,
			Event: campaigns.EvBounce, Reason: reason, OccurredAt: time.Now()}})
		require.NoError(t, err)
		inv := invitationByID(t, s, cl[0].ID)
		require.Equal(t, campaigns.InvFailed, inv.Status)
		require.Equal(t, "bounce: "+strings.Repeat("x", 491), inv.StatusReason)
		require.Equal(t, campaigns.Bounced, consentOf(t, s, cl[0].CustomerID))
	})
}

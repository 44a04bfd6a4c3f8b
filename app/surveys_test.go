package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
)

// ownDetractor gives a detractor's customer to the user ownerID.
func (e *env) ownDetractor(invitationID, ownerID int64) {
	e.t.Helper()
	require.NoError(e.t, e.store.DB().Exec("UPDATE customers SET owner_id = ? WHERE id = (SELECT customer_id FROM invitations WHERE id = ?)",
		ownerID, invitationID).Error)
}

// A rep's "Followed up" button works for their own customers' detractors
// only, as the list shows them; a coordinator's for anyone's.
func TestFollowedUpIsTheRepsOwnCustomer(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		e := setup(t, dialect)
		repUser := e.users[campaigns.RoleRep]
		other := e.newUser(campaigns.RoleRep)
		theirs := e.detractorOf(e.customers[0].ID)
		e.ownDetractor(theirs, other.ID)
		mine := e.detractorOf(e.customers[1].ID)
		e.ownDetractor(mine, repUser.ID)

		r := e.signIn(campaigns.RoleRep)
		res := r.submit(fmt.Sprintf("/followups/%d/done", theirs), url.Values{})
		require.Equal(t, http.StatusNotFound, res.Status, "another rep's detractor: %s", res.Body)
		res = r.submit(fmt.Sprintf("/followups/%d/done", mine), url.Values{})
		require.Equal(t, http.StatusSeeOther, res.Status, res.Body)

		open, err := e.store.Detractors(context.Background(), &other.ID, true)
		require.NoError(t, err)
		require.Len(t, open, 1, "the other rep's detractor is still open")
		require.Equal(t, theirs, open[0].InvitationID)

		res = e.signIn(campaigns.RoleCoordinator).submit(fmt.Sprintf("/followups/%d/done", theirs), url.Values{})
		require.Equal(t, http.StatusSeeOther, res.Status, res.Body)
		open, err = e.store.Detractors(context.Background(), nil, true)
		require.NoError(t, err)
		require.Empty(t, open)
	})
}

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

// surveyInvitation reloads the invitation behind a survey link.
func (e *env) surveyInvitation(token string) campaigns.Invitation {
	e.t.Helper()
	tok, err := e.store.ResolveToken(context.Background(), campaigns.TokenSurvey, token)
	require.NoError(e.t, err)
	var inv campaigns.Invitation
	require.NoError(e.t, e.store.DB().First(&inv, *tok.InvitationID).Error)
	return inv
}

// The survey form: a score that is sent but is not 0-10 is refused naming
// it, and nothing of that form is saved; a form with no score saves the
// comment and credits nothing.
func TestSurveyFormScore(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		e := setup(t, dialect)
		tok := e.newSurvey()
		anon := e.anon()
		// Below the survey rule's level, so that a credit shows.
		require.NoError(t, e.store.DB().Exec("UPDATE customers SET level = ? WHERE id = ?", campaigns.LevelContact, e.customers[0].ID).Error)
		levelBefore := campaigns.LevelContact
		for _, bad := range []string{"abc", "11", "-1", "7.5"} {
			r := anon.postForm("/s/"+tok, url.Values{"score": {bad}, "comment": {"Lovely evening"}})
			require.Equal(t, http.StatusUnprocessableEntity, r.Status, "score %q: %s", bad, r.Body)
			require.Contains(t, r.Body, "score", "the page names the field")
		}
		inv := e.surveyInvitation(tok)
		require.Nil(t, inv.NPSScore)
		require.Empty(t, inv.NPSComment, "nothing of a refused form is saved")

		r := anon.postForm("/s/"+tok, url.Values{"comment": {"Lovely evening"}})
		require.Equal(t, http.StatusOK, r.Status, r.Body)
		inv = e.surveyInvitation(tok)
		require.Nil(t, inv.NPSScore)
		require.Equal(t, "Lovely evening", inv.NPSComment)
		require.Equal(t, levelBefore, e.customer(e.customers[0].ID).Level, "a comment alone is no survey answer")

		r = anon.postForm("/s/"+tok, url.Values{"score": {"9"}, "comment": {"Lovely evening"}})
		require.Equal(t, http.StatusOK, r.Status, r.Body)
		require.Equal(t, 9, *e.surveyInvitation(tok).NPSScore)
		require.Greater(t, e.customer(e.customers[0].ID).Level, levelBefore, "a score is a survey answer")
	})
}

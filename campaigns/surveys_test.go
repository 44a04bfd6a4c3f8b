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

// surveyLink mints an invitation's survey link, as the survey email does.
func surveyLink(t *testing.T, s *campaigns.Store, invitationID int64) string {
	t.Helper()
	links, err := s.MintLinksAt(context.Background(), invitationID, []string{campaigns.TokenSurvey}, time.Now())
	require.NoError(t, err)
	return links[campaigns.TokenSurvey]
}

// answerSurvey records score for an invitation through its survey link.
func answerSurvey(t *testing.T, s *campaigns.Store, invitationID int64, score int) {
	t.Helper()
	_, err := s.AnswerSurvey(context.Background(), surveyLink(t, s, invitationID), &score, nil)
	require.NoError(t, err)
}

// A rep marks only their own customers' detractors as followed up, as the
// list shows them; no one marks a customer who did not score 0-6.
func TestMarkFollowedUpIsARepsOwnDetractor(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		_, cl := sentEvent(t, s, 3, 10, 0)
		var reps []*campaigns.User
		for i := 0; i < 2; i++ {
			u, err := s.CreateUser(ctx, campaigns.NewUser{Email: fmt.Sprintf("rep%d-%d@example.com", i, time.Now().UnixNano()),
				Role: campaigns.RoleRep, Password: "correct-horse-battery"})
			require.NoError(t, err)
			reps = append(reps, u)
		}
		mine, theirs, promoter := cl[0], cl[1], cl[2]
		for _, x := range []struct {
			cl    campaigns.Claim
			owner int64
			score int
		}{{mine, reps[0].ID, 3}, {theirs, reps[1].ID, 2}, {promoter, reps[0].ID, 9}} {
			require.NoError(t, s.DB().Table("customers").Where("id = ?", x.cl.CustomerID).Update("owner_id", x.owner).Error)
			answerSurvey(t, s, x.cl.ID, x.score)
		}

		err := s.MarkFollowedUp(ctx, theirs.ID, &reps[0].ID, reps[0].Email)
		require.Equal(t, campaigns.ENOTFOUND, campaigns.ErrorCode(err), "another rep's detractor: %v", err)
		open, err := s.Detractors(ctx, &reps[1].ID, true)
		require.NoError(t, err)
		require.Len(t, open, 1, "still open on its owner's list")
		require.Equal(t, theirs.ID, open[0].InvitationID)

		for _, owner := range []*int64{&reps[0].ID, nil} {
			err = s.MarkFollowedUp(ctx, promoter.ID, owner, "someone")
			require.Equal(t, campaigns.ENOTFOUND, campaigns.ErrorCode(err), "a promoter is no follow-up: %v", err)
		}

		require.NoError(t, s.MarkFollowedUp(ctx, mine.ID, &reps[0].ID, reps[0].Email))
		require.NoError(t, s.MarkFollowedUp(ctx, theirs.ID, nil, "coordinator@example.com"), "a coordinator marks anyone's")
		all, err := s.Detractors(ctx, nil, false)
		require.NoError(t, err)
		require.Len(t, all, 2)
		by := map[int64]string{}
		for _, d := range all {
			require.NotNil(t, d.FollowedUpAt)
			by[d.InvitationID] = d.FollowedUpBy
		}
		require.Equal(t, map[int64]string{mine.ID: reps[0].Email, theirs.ID: "coordinator@example.com"}, by)
		var inv campaigns.Invitation
		require.NoError(t, s.DB().First(&inv, promoter.ID).Error)
		require.Nil(t, inv.FollowedUpAt)
	})
}

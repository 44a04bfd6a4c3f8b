package campaigns_test

import (
	"context"
	"fmt"
	"strings"
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

// A long comment is kept to its first 2000 characters, not bytes: a cut
// inside a character was text PostgreSQL refused, and the guest's score
// was lost with it.
func TestSurveyCommentIsCutByCharacters(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		_, cl := sentEvent(t, s, 3, 10, 0)
		for i, tc := range []struct{ comment, want string }{
			{strings.Repeat("a", 1999) + "é and more", strings.Repeat("a", 1999) + "é"},
			{strings.Repeat("é", 2000), strings.Repeat("é", 2000)}, // 4000 bytes, 2000 characters: whole
			{"  " + strings.Repeat("€", 1999) + " x  ", strings.Repeat("€", 1999)},
		} {
			score := 3
			v, err := s.AnswerSurvey(ctx, surveyLink(t, s, cl[i].ID), &score, &tc.comment)
			require.NoError(t, err, "case %d", i)
			require.Equal(t, tc.want, v.Comment, "case %d", i)
			var inv campaigns.Invitation
			require.NoError(t, s.DB().First(&inv, cl[i].ID).Error)
			require.Equal(t, tc.want, inv.NPSComment, "case %d", i)
			require.NotNil(t, inv.NPSScore, "case %d: the score is kept", i)
			require.Equal(t, 3, *inv.NPSScore)
		}
	})
}

// A comment that is not text is refused naming the field, and nothing of
// the answer is written.
func TestSurveyCommentMustBeText(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		_, cl := sentEvent(t, s, 1, 10, 0)
		tok := surveyLink(t, s, cl[0].ID)
		for _, bad := range []string{"caf\xe9", "a\x00b"} {
			score := 4
			_, err := s.AnswerSurvey(ctx, tok, &score, &bad)
			require.Equal(t, campaigns.EINVALID, campaigns.ErrorCode(err), "%q: %v", bad, err)
			var ce *campaigns.Error
			require.ErrorAs(t, err, &ce)
			require.Contains(t, ce.Fields, "comment")
		}
		var inv campaigns.Invitation
		require.NoError(t, s.DB().First(&inv, cl[0].ID).Error)
		require.Nil(t, inv.NPSScore)
		require.Empty(t, inv.NPSComment)
	})
}

// surveyCredits counts a customer's ledger entries of the survey rule.
func surveyCredits(t *testing.T, s *campaigns.Store, customerID int64) int {
	t.Helper()
	led, err := s.Ledger(context.Background(), customerID)
	require.NoError(t, err)
	n := 0
	for _, e := range led {
		if e.Rule == "survey" {
			n++
		}
	}
	return n
}

// The survey rule is credited when a score is recorded: not for a form sent
// with no score, nor for a comment alone; and a form sent again unchanged
// writes nothing.
func TestSurveyCreditsOnlyAScore(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		_, cl := sentEvent(t, s, 1, 10, 0)
		tok, who := surveyLink(t, s, cl[0].ID), cl[0].CustomerID
		reload := func() campaigns.Invitation {
			var inv campaigns.Invitation
			require.NoError(t, s.DB().First(&inv, cl[0].ID).Error)
			return inv
		}
		before := reload()
		clock := time.Now()
		s.SetClock(func() time.Time { return clock })
		later := func() { clock = clock.Add(time.Hour) } // a write after this shows in updated_at

		later()
		v, err := s.AnswerSurvey(ctx, tok, nil, ptr(""))
		require.NoError(t, err)
		require.Nil(t, v.Score)
		require.Zero(t, surveyCredits(t, s, who), "an empty form is no answer")
		require.True(t, before.UpdatedAt.Equal(reload().UpdatedAt), "an empty form writes nothing")

		later()
		v, err = s.AnswerSurvey(ctx, tok, nil, ptr("The wine was warm."))
		require.NoError(t, err)
		require.Equal(t, "The wine was warm.", v.Comment)
		require.Zero(t, surveyCredits(t, s, who), "a comment without a score is no answer")

		later()
		_, err = s.AnswerSurvey(ctx, tok, ptr(6), ptr("The wine was warm."))
		require.NoError(t, err)
		require.Equal(t, 1, surveyCredits(t, s, who))
		answered := reload()
		require.Equal(t, 6, *answered.NPSScore)

		later()
		_, err = s.AnswerSurvey(ctx, tok, ptr(6), ptr("  The wine was warm. "))
		require.NoError(t, err)
		require.True(t, answered.UpdatedAt.Equal(reload().UpdatedAt), "the same answer again writes nothing")

		later()
		_, err = s.AnswerSurvey(ctx, tok, ptr(8), nil)
		require.NoError(t, err)
		require.Equal(t, 1, surveyCredits(t, s, who), "a changed score is credited once")
		require.Equal(t, "The wine was warm.", reload().NPSComment, "a score alone keeps the comment")

		_, err = s.AnswerSurvey(ctx, tok, ptr(11), nil)
		require.Equal(t, campaigns.EINVALID, campaigns.ErrorCode(err))
		var ce *campaigns.Error
		require.ErrorAs(t, err, &ce)
		require.Contains(t, ce.Fields, "score")
		require.Equal(t, 8, *reload().NPSScore)
	})
}

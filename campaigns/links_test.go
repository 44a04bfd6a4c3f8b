package campaigns_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
)

// flip changes the character at i to another of the same alphabet.
func flip(tok string, i int) string {
	b := []byte(tok)
	if b[i] == 'a' {
		b[i] = 'b'
	} else {
		b[i] = 'a'
	}
	return string(b)
}

func TestLinksNameTheirEmailAndNothingElse(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		addCustomers(t, s, 3, "ln")
		c, err := s.CreateCampaign(ctx, eventInput("Links"), "t")
		require.NoError(t, err)
		_, err = s.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true})
		require.NoError(t, err)
		_, err = s.Start(ctx, c.ID)
		require.NoError(t, err)
		cls, err := s.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "A", BatchID: "b1", Limit: 10, Lease: time.Minute, CancelBy: time.Now().Add(time.Hour)})
		require.NoError(t, err)
		require.Len(t, cls, 3)
		var sets, stored int64
		require.NoError(t, s.DB().Raw("SELECT count(*) FROM link_sets").Scan(&sets).Error)
		require.NoError(t, s.DB().Raw("SELECT count(*) FROM public_tokens").Scan(&stored).Error)
		require.Equal(t, []int64{3, 0}, []int64{sets, stored}, "one row per email")
		for _, cl := range cls {
			for kind, tok := range cl.Tokens {
				require.Regexp(t, `^[a-z2-7]{48}$`, tok, "the alphabet of every link")
				got, err := s.ResolveToken(ctx, kind, tok)
				require.NoError(t, err, kind)
				require.Equal(t, cl.ID, *got.InvitationID)
				require.Equal(t, cl.CustomerID, got.CustomerID)
				require.True(t, got.ExpiresAt.After(time.Now().Add(399*24*time.Hour)), "links last over a year")
			}
		}
		notFound := func(kind, tok, why string) {
			t.Helper()
			_, err := s.ResolveToken(ctx, kind, tok)
			require.Equal(t, campaigns.ENOTFOUND, campaigns.ErrorCode(err), why)
		}
		cl := cls[1]
		rsvp := cl.Tokens[campaigns.TokenRSVP]
		notFound(campaigns.TokenUnsubscribe, rsvp, "a link of another kind")
		notFound(campaigns.TokenRSVP, flip(rsvp, 47), "a changed secret")
		notFound(campaigns.TokenRSVP, flip(rsvp, 10), "another link set")
		notFound(campaigns.TokenRSVP, rsvp[:47], "a link cut short")

		// A link lasts its kind's lifetime; an email sent again, or a
		// reminder, has links of its own and the first ones keep working.
		kinds := []string{campaigns.TokenRSVP, campaigns.TokenUnsubscribe}
		old, err := s.MintLinksAt(ctx, cl.ID, kinds, time.Now().Add(-399*24*time.Hour))
		require.NoError(t, err)
		_, err = s.ResolveToken(ctx, campaigns.TokenRSVP, old[campaigns.TokenRSVP])
		require.NoError(t, err)
		older, err := s.MintLinksAt(ctx, cl.ID, kinds, time.Now().Add(-401*24*time.Hour))
		require.NoError(t, err)
		notFound(campaigns.TokenRSVP, older[campaigns.TokenRSVP], "an expired link")
		_, err = s.RSVPByToken(ctx, older[campaigns.TokenRSVP])
		require.Equal(t, campaigns.ENOTFOUND, campaigns.ErrorCode(err), "its RSVP page too")
		_, err = s.ResolveToken(ctx, campaigns.TokenUnsubscribe, older[campaigns.TokenUnsubscribe])
		require.NoError(t, err, "unsubscribe links work for two years")
		_, err = s.RSVPByToken(ctx, rsvp)
		require.NoError(t, err, "the first email's RSVP page still opens")

		// The links go with their customer.
		require.NoError(t, s.DB().Exec("DELETE FROM customers WHERE id = ?", cl.CustomerID).Error)
		notFound(campaigns.TokenRSVP, rsvp, "the invitation is gone")

		// A link stored one row each, before link sets, still works.
		plain := campaigns.NewSecret()
		inv := cls[0].ID
		require.NoError(t, s.DB().Create(&campaigns.PublicToken{TokenHash: campaigns.HashSecret(plain), Kind: campaigns.TokenRSVP,
			InvitationID: &inv, CustomerID: cls[0].CustomerID, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}).Error)
		got, err := s.ResolveToken(ctx, campaigns.TokenRSVP, plain)
		require.NoError(t, err)
		require.Equal(t, inv, *got.InvitationID)
		_, err = s.RSVPByToken(ctx, plain)
		require.NoError(t, err, "and its RSVP page opens")
	})
}

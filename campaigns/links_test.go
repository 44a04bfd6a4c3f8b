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

func TestSignedLinksNameTheirInvitationAndNothingElse(t *testing.T) {
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
		cl := cls[1]
		for kind, tok := range cl.Tokens {
			require.Regexp(t, `^[a-z2-7]{48}$`, tok, "the alphabet of every link")
			got, err := s.ResolveToken(ctx, kind, tok)
			require.NoError(t, err, kind)
			require.Equal(t, cl.ID, *got.InvitationID)
			require.Equal(t, cl.CustomerID, got.CustomerID)
			require.True(t, got.ExpiresAt.After(time.Now().Add(399*24*time.Hour)), "links last over a year")
		}
		notFound := func(kind, tok, why string) {
			t.Helper()
			_, err := s.ResolveToken(ctx, kind, tok)
			require.Equal(t, campaigns.ENOTFOUND, campaigns.ErrorCode(err), why)
		}
		rsvp := cl.Tokens[campaigns.TokenRSVP]
		notFound(campaigns.TokenUnsubscribe, rsvp, "a link of another kind")
		notFound(campaigns.TokenRSVP, flip(rsvp, 47), "a changed signature")
		notFound(campaigns.TokenRSVP, flip(rsvp, 10), "a changed invitation id")
		notFound(campaigns.TokenRSVP, rsvp[:47], "a link cut short")

		// A link lasts its kind's lifetime, to the end of its last day.
		old, err := s.SignLinkAt(ctx, campaigns.TokenRSVP, cl.ID, time.Now().Add(-399*24*time.Hour))
		require.NoError(t, err)
		_, err = s.ResolveToken(ctx, campaigns.TokenRSVP, old)
		require.NoError(t, err)
		old, err = s.SignLinkAt(ctx, campaigns.TokenRSVP, cl.ID, time.Now().Add(-402*24*time.Hour))
		require.NoError(t, err)
		notFound(campaigns.TokenRSVP, old, "an expired link")
		unsub, err := s.SignLinkAt(ctx, campaigns.TokenUnsubscribe, cl.ID, time.Now().Add(-700*24*time.Hour))
		require.NoError(t, err)
		_, err = s.ResolveToken(ctx, campaigns.TokenUnsubscribe, unsub)
		require.NoError(t, err, "unsubscribe links work for two years")

		// Another database has another key: its links mean nothing here.
		other := campaignstest.Open(t, campaignstest.SQLite)
		forged, err := other.SignLinkAt(ctx, campaigns.TokenRSVP, cl.ID, time.Now())
		require.NoError(t, err)
		notFound(campaigns.TokenRSVP, forged, "a link signed with another key")

		// The invitation goes with its customer, and its links with it.
		require.NoError(t, s.DB().Exec("DELETE FROM customers WHERE id = ?", cl.CustomerID).Error)
		notFound(campaigns.TokenRSVP, rsvp, "the invitation is gone")

		// A link stored before links were signed still works.
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

func TestEveryProcessSignsWithTheSameKey(t *testing.T) {
	for _, d := range campaignstest.Available(t) {
		t.Run(d, func(t *testing.T) {
			url := campaignstest.URL(t, d)
			ctx := context.Background()
			stores := make([]*campaigns.Store, 4)
			for i := range stores {
				s, err := campaigns.Open(ctx, url)
				require.NoError(t, err)
				t.Cleanup(func() { _ = s.Close() })
				if i == 0 {
					_, err = s.Migrate(ctx)
					require.NoError(t, err)
				}
				stores[i] = s
			}
			at := time.Now()
			links := make([]string, len(stores))
			errs := make(chan error, len(stores))
			for i, s := range stores { // first use, all at once
				go func() {
					var err error
					links[i], err = s.SignLinkAt(ctx, campaigns.TokenSurvey, 42, at)
					errs <- err
				}()
			}
			for range stores {
				require.NoError(t, <-errs)
			}
			for _, l := range links[1:] {
				require.Equal(t, links[0], l)
			}
		})
	}
}

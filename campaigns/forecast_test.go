package campaigns_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
)

func TestForecastFromPastEvents(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		f := campaigns.Filter{Metros: []string{"Chicago"}}
		fc, err := s.Forecast(ctx, campaigns.KindEvent, f, 10, 100)
		require.NoError(t, err)
		require.Zero(t, fc.BasedOn, "nothing to go on yet")

		// Three past events of 10 invitations each: 4 yes, 2 came, $100 fixed.
		for i := 0; i < 3; i++ {
			c, cl := sentEvent(t, s, 10, 50, 0)
			for j := 0; j < 4; j++ {
				_, err := s.Answer(ctx, cl[j].Tokens[campaigns.TokenRSVP], campaigns.RSVPYes, 0)
				require.NoError(t, err)
			}
			for j := 0; j < 2; j++ {
				_, err := s.CheckIn(ctx, c.ID, campaigns.CheckinTarget{CustomerID: cl[j].CustomerID}, nil)
				require.NoError(t, err)
			}
			_, err := s.AddCost(ctx, c.ID, campaigns.CostInput{Category: "venue", AmountCents: ptr(int64(10000)), Per: "fixed"}, "t")
			require.NoError(t, err)
			_, err = s.FinishIfDone(ctx, c.ID)
			require.NoError(t, err)
		}
		fc, err = s.Forecast(ctx, campaigns.KindEvent, f, 10, 100)
		require.NoError(t, err)
		require.Equal(t, 3, fc.BasedOn)
		require.Equal(t, "metro", fc.Scope)
		// Contacted: 100 - 10 held out = 90. Yes rate: the past sends went to
		// every Chicago customer that existed then; read it back.
		require.EqualValues(t, 90, fc.Contacted)
		require.NotNil(t, fc.YesRate)
		require.InDelta(t, 0.5, *fc.ShowRate, 1e-9, "2 came of 4 yes")
		require.EqualValues(t, 5000, *fc.CostPerAttendeeCents, "$300 over 6 attendees")
		require.EqualValues(t, int64(*fc.YesRate*90+0.5), *fc.ExpectedYes)

		other, err := s.Forecast(ctx, campaigns.KindEvent, campaigns.Filter{Metros: []string{"Omaha"}}, 0, 10)
		require.NoError(t, err)
		require.Equal(t, "all", other.Scope, "no Omaha events: all events")
		require.Equal(t, 3, other.BasedOn)
	})
}

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

// "Purchases on two or more separate days" counts UTC dates on both
// databases, whatever zone the PostgreSQL session runs in: two orders 23:00
// and 01:00 UTC (6 pm and 8 pm in Chicago) are two days, and two orders
// 01:00 and 23:00 UTC on one date are one (in Chicago they straddle
// midnight). Before, PostgreSQL took the session's zone and SQLite UTC.
func TestRepeatPurchaseDaysAreUTCDates(t *testing.T) {
	for _, dialect := range campaignstest.Available(t) {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			u := campaignstest.URL(t, dialect)
			if dialect == campaignstest.Postgres {
				u += "&timezone=America/Chicago" // a session zone that is not UTC
			}
			ctx := context.Background()
			s, err := campaigns.Open(ctx, u)
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			_, err = s.Migrate(ctx)
			require.NoError(t, err)
			ids := addCustomers(t, s, 2, "pd")
			level := func(who int64, at ...time.Time) campaigns.Level {
				for i, x := range at {
					recordBuy(t, s, fmt.Sprintf("PD-%d-%d", who, i), who, 1000, x)
				}
				cu, err := s.Customer(ctx, who)
				require.NoError(t, err)
				return cu.Level
			}
			require.Equal(t, campaigns.LevelGoodCustomer, level(ids[0],
				time.Date(2026, 10, 8, 23, 0, 0, 0, time.UTC), time.Date(2026, 10, 9, 1, 0, 0, 0, time.UTC)), "two UTC dates")
			require.Equal(t, campaigns.LevelCustomer, level(ids[1],
				time.Date(2026, 10, 9, 1, 0, 0, 0, time.UTC), time.Date(2026, 10, 9, 23, 0, 0, 0, time.UTC)), "one UTC date")
		})
	}
}

package campaigns_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
)

// The outbox keeps SendGrid's promise for a cancelled batch: its emails
// are removed, and a send made with its id afterwards (a worker that
// stalled past its lease) keeps nothing. Other batches are untouched.
func TestOutboxKeepsNothingOfACancelledBatch(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		addCustomers(t, s, 2, "ob")
		c := startCampaign(t, s, eventInput("Outbox"))
		msg := func(to string) []campaigns.OutboxMessage {
			cid := c.ID
			return []campaigns.OutboxMessage{{CampaignID: &cid, Kind: "invitation", ToEmail: to, FromEmail: "events@example.com",
				Subject: "s", TextBody: "t", HTMLBody: "h", Headers: "{}", Attachments: "[]", CreatedAt: time.Now()}}
		}
		count := func() int64 {
			t.Helper()
			n, err := s.OutboxCount(ctx, c.ID)
			require.NoError(t, err)
			return n
		}

		kept, err := s.StoreOutbox(ctx, "kept", msg("a@example.com"))
		require.NoError(t, err)
		require.True(t, kept)
		kept, err = s.StoreOutbox(ctx, "recalled", msg("b@example.com"))
		require.NoError(t, err)
		require.True(t, kept)
		require.EqualValues(t, 2, count())

		require.NoError(t, s.CancelOutboxBatch(ctx, "recalled"))
		require.EqualValues(t, 1, count(), "the recalled batch's email is removed")
		kept, err = s.StoreOutbox(ctx, "recalled", msg("b@example.com"))
		require.NoError(t, err)
		require.False(t, kept)
		require.EqualValues(t, 1, count(), "a send after the cancel is not kept")

		// Recalled before any send (a worker that stalled before sending).
		require.NoError(t, s.CancelOutboxBatch(ctx, "early"))
		require.NoError(t, s.CancelOutboxBatch(ctx, "early"), "a second cancel is the same outcome")
		kept, err = s.StoreOutbox(ctx, "early", msg("c@example.com"))
		require.NoError(t, err)
		require.False(t, kept)
		require.EqualValues(t, 1, count())

		kept, err = s.StoreOutbox(ctx, "kept", msg("d@example.com"))
		require.NoError(t, err)
		require.True(t, kept, "a batch not cancelled takes more sends")
		require.EqualValues(t, 2, count())

		_, err = s.StoreOutbox(ctx, "", msg("e@example.com"))
		require.Equal(t, campaigns.EINVALID, campaigns.ErrorCode(err))
		require.EqualValues(t, 2, count())
	})
}

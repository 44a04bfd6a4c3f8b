package jobs_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
	"github.com/rapport/rapport/jobs"
)

// Mailer promise (mail.go): after Cancel(id) returns nil, nothing sent
// with that batch id reaches a recipient. A worker that stalled past its
// lease and sends after recovery recalled its batch is answered as
// SendGrid answers it (accepted), and the outbox keeps nothing.
func TestOutboxSendAfterCancelIsNotKept(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		seedAudience(t, s, 5)
		c := startedEvent(t, s, 0)
		_, err := s.Start(ctx, c.ID)
		require.NoError(t, err)
		items, _, err := s.Invitations(ctx, c.ID, 1, 10)
		require.NoError(t, err)
		out := jobs.NewOutbox(s)
		batch := func(id string) *jobs.Batch {
			return &jobs.Batch{ID: id, CampaignID: c.ID, Kind: "invitation", Subject: "x", Text: "x", HTML: "x",
				Recipients: []jobs.Recipient{{InvitationID: items[0].ID, Email: items[0].Email}}}
		}

		id, err := out.NewBatchID(ctx)
		require.NoError(t, err)
		require.NoError(t, out.Cancel(ctx, id)) // recovery recalls the stalled batch
		_, err = out.Send(ctx, batch(id))       // the stalled worker wakes up
		require.NoError(t, err)
		require.Empty(t, outboxPerRecipient(t, s, c.ID), "a recalled batch must never be kept")

		other, err := out.NewBatchID(ctx)
		require.NoError(t, err)
		_, err = out.Send(ctx, batch(other))
		require.NoError(t, err)
		require.Equal(t, map[string]int{items[0].Email: 1}, outboxPerRecipient(t, s, c.ID))
	})
}

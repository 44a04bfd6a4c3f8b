package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
	"github.com/rapport/rapport/jobs"
	"github.com/rapport/rapport/jobs/sendgridfake"
)

// onCancel runs a hook before each Cancel reaches SendGrid.
type onCancel struct {
	*jobs.SendGrid
	hook func()
}

func (m *onCancel) Cancel(ctx context.Context, batchID string) error {
	m.hook()
	return m.SendGrid.Cancel(ctx, batchID)
}

// Worker A's batch was accepted by SendGrid, then A stalled past its lease
// (or its clock runs behind the recoverer's). Recovery cancels the batch;
// A wakes up and settles while the cancel is on its way. The rows must not
// end up "sent" for a batch that was cancelled: recovery takes them over
// before it cancels, A's settle counts none, and they go out again.
func TestRecoveryTakesTheRowsBeforeCancelling(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		fake := sendgridfake.New()
		defer fake.Close()
		seedAudience(t, s, 5)
		c := startedEvent(t, s, 0)
		_, err := s.Start(ctx, c.ID)
		require.NoError(t, err)
		sg := jobs.NewSendGrid(jobs.SendGridConfig{APIKey: "SG.test", BaseURL: fake.URL})
		t0 := time.Now()
		s.SetClock(func() time.Time { return t0 })
		batch, err := sg.NewBatchID(ctx)
		require.NoError(t, err)
		claims, err := s.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "A", BatchID: batch, Limit: 10,
			Lease: time.Minute, CancelBy: time.Now().Add(5 * time.Minute)})
		require.NoError(t, err)
		require.Len(t, claims, 5)
		comp, err := jobs.NewComposer("https://x.example", mailFrom(), "addr")
		require.NoError(t, err)
		b, err := comp.Batch(c, claims, batch, time.Now().Add(15*time.Minute))
		require.NoError(t, err)
		msgID, err := sg.Send(ctx, b) // A: SendGrid accepts
		require.NoError(t, err)
		ids := make([]int64, len(claims))
		for i, cl := range claims {
			ids[i] = cl.QueueID
		}

		late := func() time.Time { return t0.Add(time.Minute + time.Second) } // the recoverer: A's lease is over
		var settled int64 = -1
		m := &onCancel{SendGrid: sg, hook: func() {
			if settled >= 0 {
				return
			}
			// A wakes up, its clock a second before its lease's end.
			s.SetClock(func() time.Time { return t0.Add(time.Minute - time.Second) })
			defer s.SetClock(late)
			settled, err = s.SettleSent(ctx, campaigns.QueueInvitations, "A", batch, ids, msgID, false)
			require.NoError(t, err)
		}}
		s.SetClock(late)
		d := dispatcher(t, s, m, jobs.DispatchConfig{})
		require.NoError(t, d.Tick(ctx))
		require.Zero(t, settled, "a worker whose batch was taken over settles nothing")
		require.True(t, fake.Cancelled(batch))

		cur, err := s.Campaign(ctx, c.ID)
		require.NoError(t, err)
		f, err := s.Funnel(ctx, cur)
		require.NoError(t, err)
		require.EqualValues(t, 5, f.Sent)
		per := fake.PerRecipient()
		require.Len(t, per, 5, "every invitation recorded as sent is at SendGrid in a batch not cancelled")
		for email, n := range per {
			require.Equal(t, 1, n, email)
		}
	})
}

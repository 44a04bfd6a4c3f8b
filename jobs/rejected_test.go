package jobs_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
	"github.com/rapport/rapport/jobs"
)

// rejectOnce refuses its first request as a whole, naming no recipient,
// as SendGrid does with a 400 for a bad setting or a 413 for a body too
// large; then it sends to the outbox.
type rejectOnce struct {
	*jobs.Outbox
	err  *jobs.RejectedError
	done atomic.Bool
}

func (r *rejectOnce) Send(ctx context.Context, b *jobs.Batch) (string, error) {
	if r.done.CompareAndSwap(false, true) {
		return "", r.err
	}
	return r.Outbox.Send(ctx, b)
}

// A request refused as a whole pauses the campaign and fails nobody: once
// the coordinator fixes the cause and resumes, everyone is sent to once.
func TestRequestRefusedAsAWholePausesAndLosesNobody(t *testing.T) {
	for _, rej := range []*jobs.RejectedError{
		{Status: 400, Message: "The from address does not match a verified Sender Identity."},
		{Status: 413, Message: "Payload Too Large"},
	} {
		t.Run(rej.Message, func(t *testing.T) {
			campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
				ctx := context.Background()
				seedAudience(t, s, 20)
				c := startedEvent(t, s, 0)
				d := dispatcher(t, s, &rejectOnce{Outbox: jobs.NewOutbox(s), err: rej}, jobs.DispatchConfig{BatchSize: 10, Concurrency: 1})
				require.NoError(t, d.Tick(ctx))
				cur, err := s.Campaign(ctx, c.ID)
				require.NoError(t, err)
				require.Equal(t, campaigns.StatusPaused, cur.Status)
				require.Contains(t, cur.StatusNote, rej.Message, "the page says why")
				f, err := s.Funnel(ctx, cur)
				require.NoError(t, err)
				require.Zero(t, f.Failed, "no recipient was at fault")
				require.EqualValues(t, 20, f.Pending)

				_, err = s.Resume(ctx, c.ID)
				require.NoError(t, err)
				require.NoError(t, d.Tick(ctx))
				cur, err = s.Campaign(ctx, c.ID)
				require.NoError(t, err)
				require.Equal(t, campaigns.StatusSent, cur.Status)
				per := outboxPerRecipient(t, s, c.ID)
				require.Len(t, per, 20, "everyone is sent to once the cause is fixed")
				for email, n := range per {
					require.Equal(t, 1, n, email)
				}
			})
		})
	}
}

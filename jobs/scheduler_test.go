package jobs_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns/campaignstest"
	"github.com/rapport/rapport/jobs"
)

// A job's run at start and cron's ticks are one job: a tick that finds a
// run still going skips, whichever of the two started it. (A worker whose
// first tick drained a large send ran the next tick beside it, sending
// with twice its SEND_CONCURRENCY.)
func TestSchedulerNeverOverlapsARunOfAJob(t *testing.T) {
	s := campaignstest.Open(t, campaignstest.SQLite)
	sch := jobs.NewScheduler(s, time.Second, quiet)
	var inFlight, most, runs atomic.Int32
	release := make(chan struct{})
	sch.Add(jobs.Job{Name: "slow", Spec: "@every 1s", Run: func(ctx context.Context) error {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if runs.Add(1) == 1 {
			select { // the run at start goes on past two of cron's ticks
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	}})
	require.NoError(t, sch.Start())
	time.Sleep(2500 * time.Millisecond)
	require.EqualValues(t, 1, runs.Load(), "the ticks while the first run was going were skipped")
	close(release)
	require.Eventually(t, func() bool { return runs.Load() >= 2 }, 5*time.Second, 20*time.Millisecond,
		"the first tick after it runs")
	sch.Stop(context.Background())
	require.EqualValues(t, 1, most.Load(), "never two runs at once")
}

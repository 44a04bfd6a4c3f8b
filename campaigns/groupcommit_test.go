package campaigns

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
)

// Waiters get their own results, in batches; a settle that panics fails
// its batch only, and the queue goes on.
func TestBatchesAnswerEachWaiterAndSurviveAPanic(t *testing.T) {
	var b batches[int, int]
	b.what = "test work"
	ctx := context.Background()
	var mu sync.Mutex
	var sizes []int
	release := make(chan struct{})
	settle := func(ctx context.Context, event int64, reqs []int) ([]int, error) {
		mu.Lock()
		sizes = append(sizes, len(reqs))
		first := len(sizes) == 1
		mu.Unlock()
		if first {
			<-release // hold the first batch so that the others queue behind it
		}
		for _, r := range reqs {
			if r < 0 {
				panic("a bad request")
			}
		}
		out := make([]int, len(reqs))
		for i, r := range reqs {
			out[i] = r * 10
		}
		return out, nil
	}
	var wg sync.WaitGroup
	got := make([]int, 21)
	for i := 0; i <= 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := b.submit(ctx, 7, i, settle)
			require.NoError(t, err)
			got[i] = v
		}()
		if i == 0 {
			time.Sleep(50 * time.Millisecond) // the first is being settled
		}
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	for i, v := range got {
		require.Equal(t, i*10, v)
	}
	require.Equal(t, 1, sizes[0])
	require.Greater(t, sizes[1], 1, "those that waited went together: %v", sizes)

	_, err := b.submit(ctx, 7, -1, settle)
	require.ErrorContains(t, err, "settling test work for campaign 7")
	v, err := b.submit(ctx, 7, 3, settle)
	require.NoError(t, err, "the queue goes on after a panic")
	require.Equal(t, 30, v)

	short := func(ctx context.Context, event int64, reqs []int) ([]int, error) { return nil, nil }
	_, err = b.submit(ctx, 8, 1, short)
	require.ErrorContains(t, err, "0 results for 1 requests")
}

// A batch PostgreSQL aborted to break a deadlock is settled once more; a
// second deadlock, or any other error, fails it.
func TestBatchSettledAgainAfterADeadlock(t *testing.T) {
	var b batches[int, int]
	b.what = "test work"
	ctx := context.Background()
	calls := 0
	settle := func(fails ...error) settleFunc[int, int] {
		calls = 0
		return func(_ context.Context, _ int64, reqs []int) ([]int, error) {
			calls++
			if calls <= len(fails) {
				return nil, fails[calls-1]
			}
			return reqs, nil
		}
	}
	deadlock := &pgconn.PgError{Code: "40P01", Message: "deadlock detected"}
	got, err := b.submit(ctx, 1, 7, settle(deadlock))
	require.NoError(t, err)
	require.Equal(t, 7, got)
	require.Equal(t, 2, calls)

	_, err = b.submit(ctx, 1, 7, settle(deadlock, deadlock))
	require.ErrorAs(t, err, &deadlock)
	require.Equal(t, 2, calls, "once more only")

	_, err = b.submit(ctx, 1, 7, settle(errors.New("disk full")))
	require.EqualError(t, err, "disk full")
	require.Equal(t, 1, calls, "other errors are not retried")
}

package app

import (
	"context"
	"io"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
)

// admitted builds an app with admit(n) behind a per-request deadline, and
// a handler that holds its slot while its name is "hold" until release,
// or waits without it ("yield": what an RSVP answer does in its batch).
func admitted(n int, deadline time.Duration, release chan struct{}) (*fiber.App, func() []string, *atomic.Int32) {
	f := fiber.New(fiber.Config{DisableStartupMessage: true})
	f.Use(func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		c.SetUserContext(ctx)
		return c.Next()
	})
	f.Use(admit(n))
	var mu sync.Mutex
	var order []string
	var running, peak atomic.Int32
	f.Get("/w/:name", func(c *fiber.Ctx) error {
		if r := running.Add(1); r > peak.Load() {
			peak.Store(r)
		}
		defer running.Add(-1)
		mu.Lock()
		order = append(order, c.Params("name"))
		mu.Unlock()
		switch c.Params("name") {
		case "hold":
			<-release
		case "yield":
			campaigns.WaitingForBatch(c.UserContext())
			<-release
		}
		return c.SendString("ok")
	})
	return f, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), order...) }, &peak
}

func get(t *testing.T, f *fiber.App, path string) (int, string) {
	t.Helper()
	res, err := f.Test(httptest.NewRequest("GET", path, nil), 10_000)
	require.NoError(t, err)
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// Requests past the limit wait their turn in arrival order.
func TestAdmitServesWaitersInOrder(t *testing.T) {
	release := make(chan struct{})
	f, order, peak := admitted(1, 5*time.Second, release)
	var wg sync.WaitGroup
	start := func(name string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _ := get(t, f, "/w/"+name)
			require.Equal(t, 200, code)
		}()
		time.Sleep(200 * time.Millisecond) // so each is queued before the next
	}
	start("hold")
	for _, name := range []string{"second", "third", "fourth"} {
		start(name)
	}
	require.Equal(t, []string{"hold"}, order(), "the others wait")
	close(release)
	wg.Wait()
	require.Equal(t, []string{"hold", "second", "third", "fourth"}, order())
	require.EqualValues(t, 1, peak.Load())
}

// A request whose deadline passes while it waits gets 503, and its place
// is given up.
func TestAdmitRefusesWhenTheDeadlinePasses(t *testing.T) {
	release := make(chan struct{})
	f, order, _ := admitted(1, 300*time.Millisecond, release)
	done := make(chan struct{})
	go func() {
		defer close(done)
		get(t, f, "/w/hold")
	}()
	time.Sleep(100 * time.Millisecond)
	code, _ := get(t, f, "/w/late")
	require.Equal(t, 503, code)
	close(release)
	<-done
	require.Equal(t, []string{"hold"}, order(), "the refused request never ran")
	code, _ = get(t, f, "/w/after")
	require.Equal(t, 200, code, "the slot is free again")
}

// A request waiting for a batch gives its place to the next in line.
func TestAdmitYieldsToTheNextWhileWaitingForABatch(t *testing.T) {
	release := make(chan struct{})
	f, order, _ := admitted(1, 5*time.Second, release)
	done := make(chan struct{})
	go func() {
		defer close(done)
		code, _ := get(t, f, "/w/yield")
		require.Equal(t, 200, code)
	}()
	time.Sleep(100 * time.Millisecond)
	code, _ := get(t, f, "/w/next")
	require.Equal(t, 200, code, "served while the first waits for its batch")
	require.Equal(t, []string{"yield", "next"}, order())
	close(release)
	<-done
	code, _ = get(t, f, "/w/after")
	require.Equal(t, 200, code, "the slot is free again")
}

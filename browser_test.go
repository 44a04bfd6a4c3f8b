package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns/campaignstest"
)

// chromium finds Debian's Chromium; .ci/run installs it, so in CI a
// missing browser is a failure.
func chromium(t *testing.T) string {
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed; .ci/run installs Debian's chromium")
	}
	t.Skip("chromium is not installed")
	return ""
}

// browser opens a headless Chromium with a phone-sized viewport.
func browser(t *testing.T, width, height int64) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(int(width), int(height)))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	// chromedp logs events newer than its protocol tables; they are noise.
	ctx, cancel2 := chromedp.NewContext(actx, chromedp.WithErrorf(func(string, ...any) {}), chromedp.WithLogf(log.New(io.Discard, "", 0).Printf))
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel3)
	require.NoError(t, chromedp.Run(ctx, chromedp.EmulateViewport(width, height)))
	return ctx
}

// step runs browser actions; on failure it saves a screenshot next to the
// test's output and fails with the step's name.
func step(t *testing.T, ctx context.Context, name string, actions ...chromedp.Action) {
	t.Helper()
	if err := chromedp.Run(ctx, actions...); err != nil {
		var png []byte
		_ = chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100))
		shot := filepath.Join(os.TempDir(), "rapport-"+regexp.MustCompile(`\W+`).ReplaceAllString(name, "-")+".png")
		_ = os.WriteFile(shot, png, 0o644)
		t.Fatalf("%s: %v (screenshot: %s)", name, err, shot)
	}
}

// server runs `rapport serve` in-process on a fresh SQLite database and
// returns its base URL and an API token for a coordinator.
func server(t *testing.T) (string, string) {
	t.Helper()
	useDB(t, campaignstest.URL(t, campaignstest.SQLite))
	t.Setenv("SCHEDULER_TICK", "200ms")
	t.Setenv("MAIL_POSTAL_ADDRESS", "1 Main St, Chicago IL")
	code, _, stderr := rapport(t, "", "migrate")
	require.Equal(t, 0, code, stderr)
	code, _, stderr = rapport(t, "door password 1\n", "user", "add", "--email", "rep@example.com", "--role", "rep")
	require.Equal(t, 0, code, stderr)
	code, token, stderr := rapport(t, "", "token", "create", "--role", "coordinator", "--name", "e2e")
	require.Equal(t, 0, code, stderr)
	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var out, errb syncBuffer
	go func() { done <- run(ctx, []string{"serve", "--addr", addr}, strings.NewReader(""), &out, &errb) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	base := "http://" + addr
	require.Eventually(t, func() bool {
		r, err := http.Get(base + "/healthz")
		if err == nil {
			r.Body.Close()
		}
		return err == nil && r.StatusCode == 200
	}, 15*time.Second, 50*time.Millisecond, errb.String())
	return base, strings.TrimSpace(token)
}

func call(t *testing.T, base, token, method, path string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, base+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	require.Less(t, resp.StatusCode, 300, "%s %s: %s", method, path, raw)
	_ = json.Unmarshal(raw, &out)
	return out
}

// A rep at the door, on a phone: finds a guest by three letters, checks
// them in with one tap, and adds a walk-in.
func TestCheckInOnAPhone(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	base, token := server(t)
	for _, c := range []map[string]any{
		{"name": "Annabel Lee", "email": "annabel@example.com", "metro_area": "Chicago", "annual_spend_cents": 50000},
		{"name": "Bob Baker", "email": "bob@example.com", "metro_area": "Chicago", "annual_spend_cents": 50000},
	} {
		call(t, base, token, "POST", "/api/v1/customers", c)
	}
	start := time.Now().Add(72 * time.Hour).Format(time.RFC3339)
	end := time.Now().Add(75 * time.Hour).Format(time.RFC3339)
	c := call(t, base, token, "POST", "/api/v1/campaigns", map[string]any{"kind": "event", "name": "Golf outing",
		"time_zone": "America/Chicago", "filter": map[string]any{"metros": []string{"Chicago"}},
		"event": map[string]any{"venue": "Lakeside", "starts_at": start, "ends_at": end, "capacity": 20}})
	id := int64(c["id"].(float64))
	call(t, base, token, "POST", fmt.Sprintf("/api/v1/campaigns/%d/schedule", id), map[string]any{"now": true})
	require.Eventually(t, func() bool {
		c := call(t, base, token, "GET", fmt.Sprintf("/api/v1/campaigns/%d", id), nil)
		return c["status"] == "sent"
	}, 20*time.Second, 100*time.Millisecond)

	ctx := browser(t, 390, 844)
	var arrived, flash string
	step(t, ctx, "sign in",
		chromedp.Navigate(base+fmt.Sprintf("/campaigns/%d/checkin", id)),
		chromedp.WaitVisible(`#email`, chromedp.ByQuery),
		chromedp.SendKeys(`#email`, "rep@example.com", chromedp.ByQuery),
		chromedp.SendKeys(`#password`, "door password 1", chromedp.ByQuery),
		chromedp.Click(`button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#checkin-q`, chromedp.ByQuery),
	)
	step(t, ctx, "type three letters and tap check in",
		chromedp.SendKeys(`#checkin-q`, "ann", chromedp.ByQuery),
		// The type-ahead narrows the list without a reload.
		chromedp.WaitNotPresent(`//li[contains(., "Bob Baker")]`, chromedp.BySearch),
		chromedp.WaitVisible(`//li[contains(., "Annabel Lee")]//button`, chromedp.BySearch),
		chromedp.Click(`//li[contains(., "Annabel Lee")]//button`, chromedp.BySearch),
		chromedp.WaitVisible(`//li[contains(@class, "arrived")][contains(., "Annabel Lee")]`, chromedp.BySearch),
		chromedp.Text(`#n-arrived`, &arrived, chromedp.ByQuery),
	)
	require.Equal(t, "1", arrived)
	step(t, ctx, "add a walk-in",
		chromedp.Click(`details.walkin summary`, chromedp.ByQuery),
		chromedp.SendKeys(`#w-name`, "Wendy Walkin", chromedp.ByQuery),
		chromedp.SendKeys(`#w-email`, "wendy@example.com", chromedp.ByQuery),
		chromedp.Click(`details.walkin button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`//div[contains(@class, "flash")][contains(., "Wendy")]`, chromedp.BySearch),
		chromedp.Text(`.flash`, &flash, chromedp.ByQuery),
		chromedp.Text(`#n-arrived`, &arrived, chromedp.ByQuery),
	)
	require.Contains(t, flash, "Wendy Walkin (walk-in) is checked in")
	require.Equal(t, "2", arrived)
	var width int64
	step(t, ctx, "fits the phone", chromedp.Evaluate(`document.documentElement.scrollWidth`, &width))
	require.LessOrEqual(t, width, int64(390), "no sideways scrolling on a phone")

	c = call(t, base, token, "GET", fmt.Sprintf("/api/v1/campaigns/%d", id), nil)
	require.EqualValues(t, 2, c["funnel"].(map[string]any)["attended"])
}

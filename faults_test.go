package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
	"github.com/rapport/rapport/jobs/sendgridfake"
)

// buildRapport builds the binary the fault tests run as real processes.
func buildRapport(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rapport")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, string(out))
	return bin
}

// sendEnv is the environment of a process that sends through the fake.
func sendEnv(dbURL, fakeURL string, extra ...string) []string {
	return append(append(os.Environ(), "DATABASE_URL="+dbURL, "SENDGRID_API_KEY=SG.test", "SENDGRID_BASE_URL="+fakeURL,
		"SCHEDULER_TICK=200ms", "BASE_URL=https://rapport.example.com", "MAIL_POSTAL_ADDRESS=1 Main St"), extra...)
}

// guestsCampaign imports n guests and schedules an event to all of them.
func guestsCampaign(t *testing.T, store *campaigns.Store, n int) *campaigns.Campaign {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	b.WriteString("name,email,metro_area,annual_spend\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "Guest %d,guest%d@example.com,Chicago,500\n", i, i)
	}
	_, err := store.ImportCustomers(ctx, strings.NewReader(b.String()), campaigns.ImportOptions{Actor: "test"})
	require.NoError(t, err)
	start := time.Now().Add(10 * 24 * time.Hour)
	c, err := store.CreateCampaign(ctx, campaigns.CampaignInput{Kind: campaigns.KindEvent, Name: "Fault test",
		TimeZone: "America/Chicago", Filter: campaigns.Filter{Metros: []string{"Chicago"}},
		Event: &campaigns.EventFields{Venue: "Hall", StartsAt: &start, EndsAt: ptrTime(start.Add(time.Hour)), Capacity: 100}}, "test")
	require.NoError(t, err)
	_, err = store.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true})
	require.NoError(t, err)
	return c
}

// requireOnceEach asks the fake SendGrid what reached whom.
func requireOnceEach(t *testing.T, fake *sendgridfake.Server, n int) {
	t.Helper()
	per := fake.PerRecipient()
	dups, lost := 0, 0
	for i := 0; i < n; i++ {
		switch per[fmt.Sprintf("guest%d@example.com", i)] {
		case 0:
			lost++
		case 1:
		default:
			dups++
		}
	}
	t.Logf("%d delivered to %d recipients in %d requests: %d duplicates, %d lost", fake.DeliveredCount(), len(per), fake.Requests(), dups, lost)
	require.Zero(t, dups, "duplicates")
	require.Zero(t, lost, "lost")
}

// SIGTERM while a request is still arriving and a send batch is in flight:
// the request is answered, the batch completes and is recorded, and the
// process exits 0. Nothing is left to send again.
func TestSIGTERMFinishesTheRequestAndTheBatchInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("runs rapport serve as a process")
	}
	ctx := context.Background()
	dbURL := campaignstest.URL(t, campaignstest.SQLite)
	store, err := campaigns.Open(ctx, dbURL)
	require.NoError(t, err)
	defer store.Close()
	_, err = store.Migrate(ctx)
	require.NoError(t, err)
	token, _, err := store.CreateToken(ctx, "fault test", campaigns.RoleCoordinator, nil)
	require.NoError(t, err)
	const guests = 40
	c := guestsCampaign(t, store, guests)

	fake := sendgridfake.New()
	defer fake.Close()
	fake.SetLatency(1500 * time.Millisecond) // each SendGrid call takes 1.5 s
	addr := freePort(t)
	cmd := exec.Command(buildRapport(t), "serve", "--addr", addr)
	cmd.Env = sendEnv(dbURL, fake.URL, "SEND_BATCH_SIZE=100", "SEND_TIMEOUT=10s", "SEND_LEASE=60s")
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill() }()
	base := "http://" + addr
	require.Eventually(t, func() bool {
		r, err := http.Get(base + "/healthz")
		if err == nil {
			r.Body.Close()
		}
		return err == nil && r.StatusCode == 200
	}, 20*time.Second, 50*time.Millisecond, logs.String())
	require.Eventually(t, func() bool { return fake.Requests() > 0 }, 20*time.Second, 10*time.Millisecond, "the send starts")

	// A customer arriving slowly, half before the signal, half after.
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", base+"/api/v1/customers", pr)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	answered := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- -1
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	_, _ = pw.Write([]byte(`{"name": "Late Arrival", `))
	time.Sleep(200 * time.Millisecond)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	time.Sleep(300 * time.Millisecond)
	_, _ = pw.Write([]byte(`"email": "late@example.com", "metro_area": "Chicago"}`))
	_ = pw.Close()

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		require.NoError(t, err, "exit 0 after SIGTERM; logs:\n%s", logs.String())
	case <-time.After(40 * time.Second):
		t.Fatalf("serve did not stop within 40 s of SIGTERM; logs:\n%s", logs.String())
	}
	require.Equal(t, http.StatusCreated, <-answered, "the request in flight is answered")
	requireOnceEach(t, fake, guests)
	c, err = store.Campaign(ctx, c.ID)
	require.NoError(t, err)
	f, err := store.Funnel(ctx, c)
	require.NoError(t, err)
	require.EqualValues(t, guests, f.Sent, "the batch in flight is recorded as sent")
	require.Zero(t, f.Uncertain)
	page, err := store.ListCustomers(ctx, campaigns.CustomerQuery{Q: "late@example.com"})
	require.NoError(t, err)
	require.EqualValues(t, 1, page.Total)
}

// PostgreSQL restarted in the middle of a send: the worker and the web
// process reconnect by themselves and the campaign completes, each guest
// once. It restarts the shared server, so it runs only from scripts/faults
// (RAPPORT_FAULTS=1), never beside other tests.
func TestPostgresRestartMidSend(t *testing.T) {
	if os.Getenv("RAPPORT_FAULTS") != "1" {
		t.Skip("restarts PostgreSQL; run by scripts/faults")
	}
	if len(campaignstest.Available(t)) < 2 {
		t.Fatal("needs PostgreSQL (TEST_DATABASE_URL)")
	}
	ctx := context.Background()
	dbURL := campaignstest.URL(t, campaignstest.Postgres)
	store, err := campaigns.Open(ctx, dbURL)
	require.NoError(t, err)
	defer store.Close()
	_, err = store.Migrate(ctx)
	require.NoError(t, err)
	token, _, err := store.CreateToken(ctx, "fault test", campaigns.RoleCoordinator, nil)
	require.NoError(t, err)
	const guests = 1500
	c := guestsCampaign(t, store, guests)

	fake := sendgridfake.New()
	defer fake.Close()
	// About 15 s of sending (30 batches per sender, each one call to the
	// fake: the next batch id is reserved while a batch is out), so the
	// restart lands in it.
	fake.SetLatency(500 * time.Millisecond)
	bin := buildRapport(t)
	env := sendEnv(dbURL, fake.URL, "SEND_BATCH_SIZE=25", "SEND_CONCURRENCY=2", "SEND_LEASE=4s", "SEND_TIMEOUT=2s")
	addr := freePort(t)
	web := exec.Command(bin, "serve", "--no-worker", "--addr", addr)
	web.Env = env
	var weblog syncBuffer
	web.Stdout, web.Stderr = &weblog, &weblog
	require.NoError(t, web.Start())
	defer func() { _ = web.Process.Kill(); _, _ = web.Process.Wait() }()
	base := "http://" + addr
	apiOK := func() bool {
		req, _ := http.NewRequest("GET", base+"/api/v1/customers?q=guest1@", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == 200
	}
	var wlog syncBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("web:\n%s\nworker:\n%s", weblog.String(), wlog.String())
		}
	})
	require.Eventually(t, apiOK, 20*time.Second, 100*time.Millisecond, "the web process answers")
	// The worker starts once the web process is up, so a slow start of the
	// web process does not eat into the send.
	worker := exec.Command(bin, "worker")
	worker.Env = env
	worker.Stdout, worker.Stderr = &wlog, &wlog
	require.NoError(t, worker.Start())
	defer func() { _ = worker.Process.Kill(); _, _ = worker.Process.Wait() }()
	require.Eventually(t, func() bool { return fake.DeliveredCount() >= 200 }, time.Minute, 50*time.Millisecond, "the send is under way")

	ver, err := os.ReadDir("/etc/postgresql")
	require.NoError(t, err)
	before := fake.DeliveredCount()
	out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", ver[len(ver)-1].Name(), "main", "restart").CombinedOutput()
	require.NoError(t, err, string(out))
	after := fake.DeliveredCount()
	t.Logf("PostgreSQL restarted when %d of %d had been sent (%d by the time it was back)", before, guests, after)
	require.Less(t, after, guests, "the restart came in the middle of the send")

	require.Eventually(t, apiOK, time.Minute, 200*time.Millisecond, "the web process answers again without a restart")
	require.Eventually(t, func() bool {
		c, err = store.Campaign(ctx, c.ID)
		return err == nil && c.Status == campaigns.StatusSent
	}, 3*time.Minute, 250*time.Millisecond, "the campaign finishes")
	require.Nil(t, worker.ProcessState, "the worker kept running")
	requireOnceEach(t, fake, guests)
}

// webClient signs in through the login form, as a browser would.
func webClient(t *testing.T, base, email, password string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	csrf := func(path string) string {
		r, err := c.Get(base + path)
		require.NoError(t, err)
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		m := regexp.MustCompile(`name="_csrf" value="([^"]+)"`).FindSubmatch(b)
		require.NotNil(t, m, "a CSRF token on %s", path)
		return string(m[1])
	}
	r, err := c.PostForm(base+"/login", url.Values{"_csrf": {csrf("/login")}, "email": {email}, "password": {password}})
	require.NoError(t, err)
	r.Body.Close()
	require.Equal(t, 200, r.StatusCode)
	return c, csrf("/import")
}

func uploadCSV(t *testing.T, c *http.Client, base, csrf string, csv []byte) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	require.NoError(t, mw.WriteField("_csrf", csrf))
	fw, err := mw.CreateFormFile("file", "crm-export.csv")
	require.NoError(t, err)
	_, _ = fw.Write(csv)
	require.NoError(t, mw.Close())
	req, _ := http.NewRequest("POST", base+"/import", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	r, err := c.Do(req)
	require.NoError(t, err)
	r.Body.Close()
	require.Equal(t, 200, r.StatusCode, "the upload lands on its status page")
}

// The web process SIGKILLed in the middle of an import: uploading the same
// file again completes it, and nobody is in the table twice.
func TestWebKilledMidImportRerunCompletes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs rapport serve as a process")
	}
	ctx := context.Background()
	dialect := campaignstest.SQLite
	if len(campaignstest.Available(t)) == 2 {
		dialect = campaignstest.Postgres
	}
	dbURL := campaignstest.URL(t, dialect)
	store, err := campaigns.Open(ctx, dbURL)
	require.NoError(t, err)
	defer store.Close()
	_, err = store.Migrate(ctx)
	require.NoError(t, err)
	_, err = store.CreateUser(ctx, campaigns.NewUser{Email: "coord@example.com", Role: campaigns.RoleCoordinator, Password: "coordinator password"})
	require.NoError(t, err)
	const rows = 60000
	var b bytes.Buffer
	b.WriteString("external_id,name,email,metro_area,annual_spend,level\n")
	for i := 0; i < rows; i++ {
		fmt.Fprintf(&b, "K-%d,Kim %d,kim%d@example.com,Chicago,%d,%d\n", i, i, i, 100+i%5000, 1+i%7)
	}
	bin := buildRapport(t)
	start := func() (*exec.Cmd, string) {
		addr := freePort(t)
		cmd := exec.Command(bin, "serve", "--no-worker", "--addr", addr)
		cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL)
		require.NoError(t, cmd.Start())
		base := "http://" + addr
		require.Eventually(t, func() bool {
			r, err := http.Get(base + "/healthz")
			if err == nil {
				r.Body.Close()
			}
			return err == nil && r.StatusCode == 200
		}, 20*time.Second, 50*time.Millisecond)
		return cmd, base
	}
	web, base := start()
	c, csrf := webClient(t, base, "coord@example.com", "coordinator password")
	uploadCSV(t, c, base, csrf, b.Bytes())
	require.Eventually(t, func() bool {
		ims, err := store.RecentImports(ctx, 1)
		return err == nil && len(ims) == 1 && ims[0].Inserted > 0
	}, 30*time.Second, 5*time.Millisecond, "the import gets going")
	require.NoError(t, web.Process.Signal(syscall.SIGKILL))
	_, _ = web.Process.Wait()
	ims, err := store.RecentImports(ctx, 1)
	require.NoError(t, err)
	killedAt := ims[0].Inserted
	require.Less(t, killedAt, int64(rows), "killed before the end")

	web, base = start()
	defer func() { _ = web.Process.Kill(); _, _ = web.Process.Wait() }()
	c, csrf = webClient(t, base, "coord@example.com", "coordinator password")
	uploadCSV(t, c, base, csrf, b.Bytes())
	require.Eventually(t, func() bool {
		ims, err = store.RecentImports(ctx, 1)
		return err == nil && ims[0].Status == "done"
	}, 2*time.Minute, 100*time.Millisecond)
	t.Logf("killed after %d of %d rows; the rerun inserted %d and found %d already there", killedAt, rows, ims[0].Inserted, ims[0].Unchanged)
	require.EqualValues(t, rows, ims[0].Inserted+ims[0].Unchanged)
	require.Zero(t, ims[0].Rejected)
	var n, distinct int64
	require.NoError(t, store.DB().Model(&campaigns.Customer{}).Count(&n).Error)
	require.NoError(t, store.DB().Model(&campaigns.Customer{}).Distinct("external_id").Count(&distinct).Error)
	require.EqualValues(t, rows, n, "everyone once")
	require.EqualValues(t, rows, distinct)
}

// Command bench is the measuring half of scripts/bench/run: it writes test
// files and drives a running `rapport serve` over HTTP, printing one
// "name=value" line per figure for the shell script's table.
//
//	bench csv N [FROM]               a CRM export of N customers (numbered from FROM) on stdout
//	bench key DIR                    a webhook signing key; prints the public half
//	bench http BASE TOKEN EMAIL PW   audience preview and customer list timings
//	bench links BASE TOKEN DIR       an event for ~5,000 guests, sent and each answered yes once; wrk scripts in DIR
//	bench webhook BASE DIR CAMPAIGN  signed event batches of 1,000: events/s, dedup
//	bench pages BASE EMAIL PW        every page, as an admin: the slowest (and each page's on stderr)
//	bench bare                       a bare Fiber endpoint on a free port, whose address it prints
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/rapport/rapport/jobs/sendgridfake"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: bench csv|key|http|links|webhook|pages|bare …")
	}
	a := os.Args[2:]
	switch os.Args[1] {
	case "csv":
		n, _ := strconv.Atoi(arg(a, 0))
		from := 0
		if len(a) > 1 {
			from, _ = strconv.Atoi(a[1])
		}
		writeCSV(os.Stdout, from, n)
	case "key":
		key(arg(a, 0))
	case "http":
		httpTimings(arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3))
	case "links":
		links(arg(a, 0), arg(a, 1), arg(a, 2))
	case "webhook":
		webhook(arg(a, 0), arg(a, 1), arg(a, 2))
	case "pages":
		pages(arg(a, 0), arg(a, 1), arg(a, 2))
	case "bare":
		bare()
	default:
		fail("unknown command " + os.Args[1])
	}
}

func arg(a []string, i int) string {
	if i >= len(a) {
		fail("missing argument")
	}
	return a[i]
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "bench:", msg)
	os.Exit(1)
}

func check(err error) {
	if err != nil {
		fail(err.Error())
	}
}

// metros are the first eight of `rapport seed`'s metro areas.
var metros = []string{"Chicago", "Evanston", "Milwaukee", "Indianapolis", "Madison", "Detroit", "Minneapolis", "St. Louis"}

func writeCSV(w io.Writer, from, n int) {
	bw := &bytes.Buffer{}
	bw.WriteString("external_id,name,email,company,metro_area,annual_spend,level,phone\n")
	r := rand.New(rand.NewPCG(1, uint64(2+from)))
	for i := from; i < from+n; i++ {
		fmt.Fprintf(bw, "B-%07d,Person %d,person%d@bench.example.com,\"Firm %d, Inc\",%s,\"$%d.%02d\",%d,+1 312 555 %04d\n",
			i, i, i, i%997, metros[r.IntN(len(metros))], r.IntN(20000), r.IntN(100), 1+r.IntN(7), i%10000)
		if bw.Len() > 1<<20 {
			_, err := w.Write(bw.Bytes())
			check(err)
			bw.Reset()
		}
	}
	_, err := w.Write(bw.Bytes())
	check(err)
}

func key(dir string) {
	k, pub := sendgridfake.NewWebhookKey()
	der, err := x509.MarshalECPrivateKey(k)
	check(err)
	check(os.WriteFile(filepath.Join(dir, "webhook.key"), der, 0o600))
	fmt.Println(pub)
}

// api calls the JSON API with a bearer token and decodes the answer.
func api(method, u, token string, body, out any) time.Duration {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, u, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	check(err)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	if resp.StatusCode >= 300 {
		fail(fmt.Sprintf("%s %s: %d %s", method, u, resp.StatusCode, raw))
	}
	if out != nil {
		check(json.Unmarshal(raw, out))
	}
	return d
}

func p95(ds []time.Duration) float64 {
	slices.Sort(ds)
	return float64(ds[len(ds)*95/100]) / float64(time.Millisecond)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// httpTimings: the audience preview with 1-3 metros, a spend floor and a
// level range; the customer list walked by cursor to page 1,000 (API, in
// five sorts and filters; page), timing pages 801-1,000.
func httpTimings(base, token, email, password string) {
	r := rand.New(rand.NewPCG(3, 4))
	var pre []time.Duration
	for i := 0; i < 200; i++ {
		ms := slices.Clone(metros)
		r.Shuffle(len(ms), func(a, b int) { ms[a], ms[b] = ms[b], ms[a] })
		lo, hi := 1+r.IntN(3), 4+r.IntN(4)
		f := map[string]any{"metros": ms[:1+r.IntN(3)], "min_spend_cents": 100 * r.IntN(20000), "min_level": lo, "max_level": hi}
		pre = append(pre, api("POST", base+"/api/v1/audience/preview", token, f, nil))
	}
	fmt.Printf("preview_p95_ms=%.1f\n", p95(pre))

	// Walked to page 1,000 (or the list's end, on a small seed) in each
	// sort, filtered and not; the last fifth of the pages walked are
	// timed, and the slowest walk is reported.
	queries := []string{
		"metro=Chicago&metro=Evanston&min_spend_cents=100000&sort=name",
		"level=3-7&sort=-spend",
		"sort=-updated",
		"min_spend_cents=50000&sort=metro",
		"metro=Milwaukee&sort=level",
	}
	worst, worstQuery, last := 0.0, "", 0
	for _, query := range queries {
		var listAPI []time.Duration
		next := ""
		for page := 1; page <= 1000; page++ {
			var out struct {
				Items      []json.RawMessage `json:"items"`
				NextCursor *string           `json:"next_cursor"`
			}
			u := base + "/api/v1/customers?" + query + "&per_page=50&page=" + strconv.Itoa(page)
			if next != "" {
				u += "&after=" + url.QueryEscape(next)
			}
			listAPI = append(listAPI, api("GET", u, token, nil, &out))
			if out.NextCursor == nil {
				break
			}
			next = *out.NextCursor
		}
		if p := p95(listAPI[len(listAPI)*4/5:]); p >= worst {
			worst, worstQuery = p, query
		}
		if query == queries[0] {
			last = len(listAPI)
		}
	}
	fmt.Printf("list_api_p95_ms=%.1f\nlist_api_worst='%s'\nlist_pages=%d\n", worst, worstQuery, last)

	// Search, first page (count included): common, rare and unmatched
	// terms, each asked three times; the slowest answer.
	var search []time.Duration
	for _, term := range []string{"son", "garcia", "olivia.garcia.1", "acme", "zz9", "example.com"} {
		for range 3 {
			search = append(search, api("GET", base+"/api/v1/customers?q="+url.QueryEscape(term), token, nil, nil))
		}
	}
	slices.Sort(search)
	fmt.Printf("search_max_ms=%.1f\n", ms(search[len(search)-1]))

	c := signIn(base, email, password)
	var listPage []time.Duration
	u := base + "/customers?metro=Chicago&metro=Evanston&min_spend=1000&sort=name"
	nextLink := regexp.MustCompile(`<a href="([^"]+)" rel="next">`)
	for page := 1; page <= last; page++ {
		t0 := time.Now()
		body := get(c, u)
		listPage = append(listPage, time.Since(t0))
		m := nextLink.FindStringSubmatch(body)
		if m == nil {
			break
		}
		u = base + strings.ReplaceAll(m[1], "&amp;", "&")
	}
	fmt.Printf("list_page_p95_ms=%.1f\n", p95(listPage[len(listPage)*4/5:]))
}

func signIn(base, email, password string) *http.Client {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	body := get(c, base+"/login")
	m := regexp.MustCompile(`name="_csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		fail("no CSRF token on the sign-in page")
	}
	resp, err := c.PostForm(base+"/login", url.Values{"_csrf": {m[1]}, "email": {email}, "password": {password}})
	check(err)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		fail("sign-in failed: " + resp.Status)
	}
	return c
}

func get(c *http.Client, u string) string {
	resp, err := c.Get(u)
	check(err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		fail(fmt.Sprintf("GET %s: %s", u, resp.Status))
	}
	return string(b)
}

// links sends an event to ~5,000 customers through the local outbox,
// answers each RSVP link yes once, and writes wrk scripts that answer its
// RSVP links again and check its guests in.
func links(base, token, dir string) {
	start := time.Now().Add(10 * 24 * time.Hour).UTC()
	var c struct {
		ID int64 `json:"id"`
	}
	api("POST", base+"/api/v1/campaigns", token, map[string]any{"kind": "event", "name": "Bench evening",
		"time_zone": "America/Chicago", "holdout_percent": 0, "filter": map[string]any{"min_spend_cents": 3800000}, // ~0.5% of a seed
		"event": map[string]any{"venue": "Bench hall", "starts_at": start, "ends_at": start.Add(3 * time.Hour), "capacity": 100000, "guests_per_invite": 1}}, &c)
	api("POST", fmt.Sprintf("%s/api/v1/campaigns/%d/schedule", base, c.ID), token, map[string]any{"now": true}, nil)
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var cp struct {
			Status string `json:"status"`
		}
		api("GET", fmt.Sprintf("%s/api/v1/campaigns/%d", base, c.ID), token, nil, &cp)
		if cp.Status == "sent" {
			break
		}
		if time.Now().After(deadline) {
			fail("the bench event was not sent in 5 minutes; is the scheduler running?")
		}
		time.Sleep(500 * time.Millisecond)
	}
	// RSVP tokens come from the emails in the outbox.
	tokens := outboxTokens(c.ID)
	if len(tokens) == 0 {
		fail("no RSVP links in the outbox")
	}
	// Every guest answers yes once, so that the "same answer again" run
	// measures what it says; first answers and changes are the other run.
	var wg sync.WaitGroup
	next := make(chan string)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range next {
				resp, err := http.PostForm(base+"/r/"+t, url.Values{"answer": {"yes"}})
				check(err)
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					fail(fmt.Sprintf("answering yes: %d", resp.StatusCode))
				}
			}
		}()
	}
	for _, t := range tokens {
		next <- t
	}
	close(next)
	wg.Wait()
	out, err := runPSQL(os.Getenv("BENCH_DATABASE_URL"), fmt.Sprintf("SELECT customer_id FROM invitations WHERE campaign_id = %d", c.ID))
	check(err)
	ids := strings.Fields(out)
	check(os.WriteFile(filepath.Join(dir, "rsvp-repeat.lua"), []byte(luaRSVP(tokens, false)), 0o644))
	check(os.WriteFile(filepath.Join(dir, "rsvp-change.lua"), []byte(luaRSVP(tokens, true)), 0o644))
	check(os.WriteFile(filepath.Join(dir, "checkin.lua"), []byte(fmt.Sprintf(`local ids = {%s}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
request = function()
  return wrk.format(nil, "/api/v1/campaigns/%d/checkins", nil, '{"customer_id":' .. ids[math.random(#ids)] .. '}')
end
`, strings.Join(ids, ","), token, c.ID)), 0o644))
	fmt.Printf("campaign=%d\nlinks=%d\n", c.ID, len(tokens))
}

func outboxTokens(campaignID int64) []string {
	db := os.Getenv("BENCH_DATABASE_URL")
	if db == "" {
		fail("BENCH_DATABASE_URL is not set")
	}
	out, err := runPSQL(db, fmt.Sprintf("SELECT text_body FROM outbox WHERE campaign_id = %d AND kind = 'invitation'", campaignID))
	check(err)
	seen := map[string]bool{}
	var toks []string
	for _, m := range regexp.MustCompile(`/r/([a-z0-9]{20,})`).FindAllStringSubmatch(out, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			toks = append(toks, m[1])
		}
	}
	return toks
}

func luaRSVP(tokens []string, change bool) string {
	answer := `"yes"`
	if change {
		answer = `((math.random(2) == 1) and "yes" or "no")`
	}
	return fmt.Sprintf(`local tokens = {"%s"}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
request = function()
  return wrk.format(nil, "/r/" .. tokens[math.random(#tokens)], nil, "answer=" .. %s)
end
`, strings.Join(tokens, `","`), answer)
}

// webhook posts signed batches of 1,000 delivered events and times them;
// then posts one batch again and expects nothing applied.
func webhook(base, dir, campaign string) {
	der, err := os.ReadFile(filepath.Join(dir, "webhook.key"))
	check(err)
	k, err := x509.ParseECPrivateKey(der)
	check(err)
	db := os.Getenv("BENCH_DATABASE_URL")
	out, err := runPSQL(db, "SELECT id || ',' || email FROM invitations WHERE campaign_id = "+campaign)
	check(err)
	var invs [][2]string
	for _, l := range strings.Fields(out) {
		if p := strings.SplitN(l, ",", 2); len(p) == 2 {
			invs = append(invs, [2]string{p[0], p[1]})
		}
	}
	if len(invs) == 0 {
		fail("no invitations to report events for")
	}
	batches := 20
	var first []byte
	events := 0
	t0 := time.Now()
	for b := 0; b < batches; b++ {
		var evs []map[string]any
		for i := 0; i < 1000; i++ {
			inv := invs[(b*1000+i)%len(invs)]
			kind := []string{"processed", "delivered", "open"}[i%3]
			evs = append(evs, map[string]any{"email": inv[1], "timestamp": time.Now().Unix(), "event": kind,
				"sg_event_id": fmt.Sprintf("bench-%d-%d", b, i), "sg_message_id": "bench.m", "invitation_id": inv[0]})
		}
		body, _ := json.Marshal(evs)
		if first == nil {
			first = body
		}
		postSigned(base, k, body)
		events += len(evs)
	}
	el := time.Since(t0)
	fmt.Printf("webhook_events_per_s=%.0f\n", float64(events)/el.Seconds())
	applied := postSigned(base, k, first)
	fmt.Printf("webhook_reapplied=%d\n", applied)
}

func postSigned(base string, k *ecdsa.PrivateKey, body []byte) int {
	sig, ts := sendgridfake.SignWebhook(k, body, time.Now())
	req, _ := http.NewRequest("POST", base+"/webhooks/sendgrid", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Twilio-Email-Event-Webhook-Signature", sig)
	req.Header.Set("X-Twilio-Email-Event-Webhook-Timestamp", ts)
	resp, err := http.DefaultClient.Do(req)
	check(err)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		fail(fmt.Sprintf("webhook: %s %s", resp.Status, raw))
	}
	var out struct {
		Applied int `json:"applied"`
	}
	check(json.Unmarshal(raw, &out))
	return out.Applied
}

// pages signs in as an admin and opens every page five times.
func pages(base, email, password string) {
	c := signIn(base, email, password)
	var worst time.Duration
	worstPage := ""
	for _, p := range []string{"/", "/customers", "/customers?sort=-spend&metro=Chicago", "/customers?q=person", "/customers/1",
		"/import", "/users", "/campaigns", "/campaigns/new", "/campaigns/1", "/campaigns/1/checkin", "/finance", "/audit",
		"/followups", "/outbox"} {
		var slowest time.Duration
		for i := 0; i < 5; i++ {
			t0 := time.Now()
			resp, err := c.Get(base + p)
			check(err)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			d := time.Since(t0)
			if resp.StatusCode == http.StatusNotFound {
				slowest = -1
				break // no campaign 1 on this database
			}
			if resp.StatusCode != 200 {
				fail(fmt.Sprintf("GET %s: %s", p, resp.Status))
			}
			slowest = max(slowest, d)
			if d > worst {
				worst, worstPage = d, p
			}
		}
		// Each page's slowest on stderr, to read beside the worst.
		if slowest < 0 {
			fmt.Fprintf(os.Stderr, "  %-40s not found, skipped\n", p)
		} else {
			fmt.Fprintf(os.Stderr, "  %-40s %7.1f ms\n", p, ms(slowest))
		}
	}
	fmt.Printf("pages_worst_ms=%.1f\npages_worst='%s'\n", ms(worst), worstPage)
}

// runPSQL runs one query through psql and returns its unaligned rows.
func runPSQL(db, query string) (string, error) {
	out, err := exec.Command("psql", db, "-At", "-c", query).Output()
	return string(out), err
}

// bare serves a bare Fiber endpoint (GET /plaintext answers "ok": no
// middleware, no database) on a free loopback port, whose address it
// prints first, until killed: the yardstick the RSVP and check-in rows are
// read beside, measured on the same cores in the same run.
func bare() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	fmt.Println(ln.Addr())
	f := fiber.New(fiber.Config{DisableStartupMessage: true})
	f.Get("/plaintext", func(c *fiber.Ctx) error { return c.SendString("ok") })
	check(f.Listener(ln))
}

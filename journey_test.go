package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// shot saves a screenshot of the page as name.png when RAPPORT_SCREENSHOTS
// names a folder (the README's pictures come from this run).
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("RAPPORT_SCREENSHOTS")
	if dir == "" {
		return
	}
	var png []byte
	require.NoError(t, chromedp.Run(ctx, chromedp.CaptureScreenshot(&png)))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
}

// acceptDialogs answers yes to the page's confirm() questions, as a
// person clicking OK would.
func acceptDialogs(ctx context.Context) {
	chromedp.ListenTarget(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			go func() { _ = chromedp.Run(ctx, page.HandleJavaScriptDialog(true)) }()
		}
	})
}

// setValue sets a form field by id, as typing or picking would.
func setValue(id, v string) chromedp.Action {
	return chromedp.Evaluate(fmt.Sprintf(`document.getElementById(%q).value = %q`, id, v), nil)
}

func signIn(t *testing.T, ctx context.Context, base, email, password string) {
	t.Helper()
	step(t, ctx, "sign in as "+email,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(`#email`, chromedp.ByQuery),
		chromedp.SendKeys(`#email`, email, chromedp.ByQuery),
		chromedp.SendKeys(`#password`, password, chromedp.ByQuery),
		chromedp.Click(`button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`.signout`, chromedp.ByQuery),
	)
}

// The whole journey in a real browser: a coordinator imports customers and
// sends an event; a guest answers yes; a rep checks guests in on a phone;
// finance enters a cost and reads the return.
func TestTheWholeJourney(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a browser through every page")
	}
	base, _ := server(t)
	for _, u := range [][2]string{{"coordinator@example.com", "coordinator"}, {"finance@example.com", "finance"}} {
		code, _, stderr := rapport(t, "journey password\n", "user", "add", "--email", u[0], "--role", u[1])
		require.Equal(t, 0, code, stderr)
	}
	csvPath := filepath.Join(t.TempDir(), "crm-export.csv")
	var b strings.Builder
	b.WriteString("external_id,name,email,company,metro_area,annual_spend,level\n")
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&b, "J-%d,Guest %02d,guest%d@example.com,Acme %d,%s,\"$%d,000.00\",%d\n", i, i, i, i%5,
			[]string{"Chicago", "Evanston", "Milwaukee"}[i%3], 1+i%9, 1+i%6)
	}
	b.WriteString("J-X,Broken Row,not-an-email,,Chicago,100,2\n")
	require.NoError(t, os.WriteFile(csvPath, []byte(b.String()), 0o644))

	// The coordinator, at her desk.
	ctx := browser(t, 1280, 900)
	acceptDialogs(ctx)
	signIn(t, ctx, base, "coordinator@example.com", "journey password")
	var state, rejected string
	step(t, ctx, "import a CSV and watch it finish",
		chromedp.Navigate(base+"/import"),
		chromedp.SetUploadFiles(`#file`, []string{csvPath}, chromedp.ByQuery),
		chromedp.Click(`#import-form button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#import-status`, chromedp.ByQuery),
		chromedp.WaitVisible(`//strong[@id="import-state"][contains(., "Done")]`, chromedp.BySearch),
		chromedp.Text(`#import-state`, &state, chromedp.ByQuery),
		chromedp.Text(`#n-rejected`, &rejected, chromedp.ByQuery),
	)
	require.Equal(t, "1", rejected)
	shot(t, ctx, "import")
	var rows int
	step(t, ctx, "the customers are listed",
		chromedp.Navigate(base+"/customers"),
		chromedp.WaitVisible(`//td[contains(., "Guest 12")]`, chromedp.BySearch),
		chromedp.Evaluate(`document.querySelectorAll("table.list tbody tr").length`, &rows),
	)
	require.Equal(t, 50, rows, "the first page of 60")
	shot(t, ctx, "customers")
	var pageTwo int
	step(t, ctx, "the next page of customers",
		chromedp.Click(`a[rel=next]`, chromedp.ByQuery),
		chromedp.WaitVisible(`//nav[contains(@class, "pager")]/span[contains(., "Page 2")]`, chromedp.BySearch),
		chromedp.Evaluate(`document.querySelectorAll("table.list tbody tr").length`, &pageTwo),
	)
	require.Equal(t, 10, pageTwo, "the last 10 of 60")
	step(t, ctx, "a customer's page", chromedp.Navigate(base+"/customers/1"), chromedp.WaitVisible(`.ladder`, chromedp.ByQuery))
	shot(t, ctx, "customer")

	var before, after string
	step(t, ctx, "the audience count follows the filter",
		chromedp.Navigate(base+"/campaigns/new"),
		chromedp.WaitVisible(`//strong[@id="preview-count"][not(contains(., "…"))]`, chromedp.BySearch),
		chromedp.Text(`#preview-count`, &before, chromedp.ByQuery),
		setValue(`min_spend`, ""),
		chromedp.SendKeys(`#min_spend`, "5000", chromedp.ByQuery),
		chromedp.ActionFunc(func(ctx context.Context) error {
			return chromedp.WaitVisible(fmt.Sprintf(`//strong[@id="preview-count"][text() != %q]`, before), chromedp.BySearch).Do(ctx)
		}),
		chromedp.Text(`#preview-count`, &after, chromedp.ByQuery),
	)
	require.NotEqual(t, before, after)
	step(t, ctx, "show the count", chromedp.ScrollIntoView(`#preview-count`, chromedp.ByQuery))
	shot(t, ctx, "campaign-builder")
	start := time.Now().Add(72 * time.Hour).Format("2006-01-02T15:04")
	end := time.Now().Add(75 * time.Hour).Format("2006-01-02T15:04")
	var status string
	step(t, ctx, "create and schedule an event",
		chromedp.SendKeys(`#name`, "Art museum evening", chromedp.ByQuery),
		chromedp.SendKeys(`#venue`, "Art Institute", chromedp.ByQuery),
		chromedp.SendKeys(`#address`, "111 S Michigan Ave, Chicago", chromedp.ByQuery),
		setValue(`starts_at`, start),
		setValue(`ends_at`, end),
		setValue(`holdout_percent`, "0"),
		chromedp.Click(`#builder button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`//div[contains(@class, "flash")][contains(., "draft")]`, chromedp.BySearch),
		chromedp.Click(`//input[@name="when"][@value="now"]`, chromedp.BySearch),
		chromedp.Click(`form.schedule button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`//div[contains(@class, "flash")][contains(., "Scheduled")]`, chromedp.BySearch),
	)
	require.Eventually(t, func() bool {
		_ = chromedp.Run(ctx, chromedp.Reload(), chromedp.Text(`h1 .status`, &status, chromedp.ByQuery))
		return status == "sent"
	}, 20*time.Second, 300*time.Millisecond, "the campaign is sent")
	shot(t, ctx, "campaign")
	var text string
	step(t, ctx, "read the invitation in the outbox",
		chromedp.Navigate(base+"/outbox"),
		chromedp.Click(`table.list tbody tr:first-child a`, chromedp.ByQuery),
		chromedp.WaitVisible(`pre.email-text`, chromedp.ByQuery),
		chromedp.Text(`pre.email-text`, &text, chromedp.ByQuery),
	)
	shot(t, ctx, "outbox")
	rsvp := regexp.MustCompile(`http://\S+/r/[a-z0-9]+`).FindString(text)
	qr := regexp.MustCompile(`/q/([a-z0-9]+)\.png`).FindStringSubmatch(text)
	require.NotEmpty(t, rsvp, text)
	require.Len(t, qr, 2)

	// The guest, on her phone.
	guest := browser(t, 390, 844)
	var answer string
	step(t, guest, "answer yes with a guest",
		chromedp.Navigate(rsvp),
		chromedp.WaitVisible(`//h1[contains(., "Art museum evening")]`, chromedp.BySearch),
		chromedp.Click(`//input[@name="answer"][@value="yes"]`, chromedp.BySearch),
		setValue(`guests`, "1"),
		chromedp.Click(`form button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`//p[@id="current-answer"][contains(., "You are coming")]`, chromedp.BySearch),
		chromedp.Text(`#current-answer`, &answer, chromedp.ByQuery),
	)
	require.Contains(t, answer, "You are coming with 1 guest")
	shot(t, guest, "rsvp-phone")

	// The rep, at the door, on his phone.
	door := browser(t, 390, 844)
	code, _, stderr := rapport(t, "door password 2\n", "user", "add", "--email", "rep2@example.com", "--role", "rep")
	require.Equal(t, 0, code, stderr)
	signIn(t, door, base, "rep2@example.com", "door password 2")
	var flash string
	step(t, door, "check a guest in by search",
		chromedp.Navigate(base+"/campaigns/1/checkin"),
		chromedp.SendKeys(`#checkin-q`, "Guest 0", chromedp.ByQuery),
		chromedp.WaitVisible(`//li[contains(., "Guest 08")]//button`, chromedp.BySearch),
		chromedp.Click(`//li[contains(., "Guest 08")]//button`, chromedp.BySearch),
		chromedp.WaitVisible(`//li[contains(@class, "arrived")][contains(., "Guest 08")]`, chromedp.BySearch),
	)
	shot(t, door, "checkin-phone")
	step(t, door, "check a guest in by the QR code",
		chromedp.Navigate(base+"/c/"+qr[1]),
		chromedp.WaitVisible(`button.big`, chromedp.ByQuery),
		chromedp.Click(`button.big`, chromedp.ByQuery),
		chromedp.WaitVisible(`//div[contains(@class, "flash")][contains(., "checked in")]`, chromedp.BySearch),
		chromedp.Text(`.flash`, &flash, chromedp.ByQuery),
	)
	step(t, door, "add a walk-in",
		chromedp.Click(`details.walkin summary`, chromedp.ByQuery),
		chromedp.SendKeys(`#w-name`, "Wanda Walkin", chromedp.ByQuery),
		chromedp.SendKeys(`#w-email`, "wanda@example.com", chromedp.ByQuery),
		chromedp.Click(`details.walkin button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`//div[contains(@class, "flash")][contains(., "Wanda Walkin (walk-in)")]`, chromedp.BySearch),
	)

	// Finance, on a laptop.
	fin := browser(t, 1280, 900)
	signIn(t, fin, base, "finance@example.com", "journey password")
	var csvHead string
	step(t, fin, "enter a cost",
		chromedp.Navigate(base+"/campaigns/1#costs"),
		chromedp.SendKeys(`#cost-cat`, "venue", chromedp.ByQuery),
		chromedp.SendKeys(`#cost-amount`, "$1,500", chromedp.ByQuery),
		chromedp.Click(`#costs form.inline button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`//div[contains(@class, "flash")][contains(., "Cost added")]`, chromedp.BySearch),
		chromedp.WaitVisible(`//section[@id="costs"]//dd[contains(., "$1,500.00")]`, chromedp.BySearch),
	)
	from := time.Now().AddDate(0, 0, -1).Format("2006-01-02")
	to := time.Now().AddDate(0, 0, 10).Format("2006-01-02")
	step(t, fin, "read the ROI page and its CSV",
		chromedp.Navigate(base+"/finance?from="+from+"&to="+to),
		chromedp.WaitVisible(`svg.chart`, chromedp.ByQuery),
		chromedp.WaitVisible(`//td[contains(., "Art museum evening")]`, chromedp.BySearch),
		chromedp.Evaluate(`fetch(document.querySelector("a.button[href*='format=csv']").href).then(r => r.text())`, &csvHead,
			func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }),
	)
	shot(t, fin, "finance")
	require.True(t, strings.HasPrefix(csvHead, "campaign_id,name,kind"), csvHead)
	require.Contains(t, csvHead, "Art museum evening")
	require.Contains(t, csvHead, ",150000,", "the cost in cents")

	step(t, ctx, "the coordinator's home page", chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(`//a[contains(., "Art museum evening")]`, chromedp.BySearch))
	shot(t, ctx, "home")

	// Every page, on the smallest phone, as the admin who sees them all.
	code, _, stderr = rapport(t, "admin password\n", "user", "add", "--email", "admin@example.com", "--role", "admin")
	require.Equal(t, 0, code, stderr)
	small := browser(t, 360, 740)
	auditPages(t, small, base, "/login", strings.TrimPrefix(rsvp, base))
	signIn(t, small, base, "admin@example.com", "admin password")
	var outline string
	step(t, small, "the keyboard reaches the page and shows where it is",
		chromedp.KeyEvent("\t"),
		chromedp.Evaluate(`document.activeElement.textContent.trim() + " / " + getComputedStyle(document.activeElement).outlineStyle`, &outline),
	)
	require.Equal(t, "Skip to content / solid", outline)
	auditPages(t, small, base, "/", "/customers", "/customers/1", "/import", "/imports/1", "/users",
		"/campaigns", "/campaigns/new", "/campaigns/1", "/campaigns/1/checkin", "/finance", "/audit",
		"/followups", "/outbox", "/outbox/1")
}

// auditJS lists what a person would trip over on the page: sideways
// scrolling, inputs without a label, and text below WCAG AA contrast.
const auditJS = `(() => {
  const problems = [];
  if (document.documentElement.scrollWidth > window.innerWidth)
    problems.push("scrolls sideways: " + document.documentElement.scrollWidth + "px, past the edge: " +
      [...document.body.querySelectorAll("*")].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 &&
        getComputedStyle(e.parentElement).overflowX === "visible" &&
        !e.closest(".table-wrap"))
        .slice(0, 3).map(e => e.tagName.toLowerCase() + (e.className ? "." + e.className : "") + (e.id ? "#" + e.id : "")).join(", "));
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (["hidden", "submit"].includes(el.type)) continue;
    if ((el.labels && el.labels.length) || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby")) continue;
    problems.push("no label: " + el.outerHTML.slice(0, 90));
  }
  const lum = c => {
    const m = c.match(/[\d.]+/g).map(Number);
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(m[0]) + 0.7152 * f(m[1]) + 0.0722 * f(m[2]);
  };
  const background = el => {
    for (; el; el = el.parentElement) {
      const m = getComputedStyle(el).backgroundColor.match(/[\d.]+/g);
      if (m && (m.length < 4 || +m[3] > 0.5)) return getComputedStyle(el).backgroundColor;
    }
    return "rgb(255, 255, 255)";
  };
  const seen = new Set();
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) {
    const text = walk.currentNode.textContent.trim();
    const el = walk.currentNode.parentElement;
    if (!text || seen.has(el) || !(el instanceof HTMLElement) || !el.offsetParent) continue;
    seen.add(el);
    const st = getComputedStyle(el);
    const a = lum(st.color), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(st.fontSize);
    const large = size >= 24 || (size >= 18.66 && +st.fontWeight >= 700);
    if (ratio < (large ? 3 : 4.5)) problems.push("contrast " + ratio.toFixed(2) + " (" + st.color + " on " + background(el) + "): " + text.slice(0, 40));
  }
  return problems;
})()`

// auditPages opens each page in a 360 px wide browser and fails on what
// auditJS finds there.
func auditPages(t *testing.T, ctx context.Context, base string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		var problems []string
		step(t, ctx, "audit "+p,
			chromedp.Navigate(base+p),
			chromedp.WaitReady(`body`, chromedp.ByQuery),
			chromedp.Evaluate(auditJS, &problems),
		)
		require.Empty(t, problems, "%s at 360 px", p)
	}
}

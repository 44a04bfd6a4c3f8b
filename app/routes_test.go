package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
)

const (
	admin       = string(campaigns.RoleAdmin)
	coordinator = string(campaigns.RoleCoordinator)
	rep         = string(campaigns.RoleRep)
	finance     = string(campaigns.RoleFinance)
)

var (
	everyone = []string{anonymous, admin, coordinator, rep, finance}
	staff    = []string{admin, coordinator, rep, finance}
	writers  = []string{admin, coordinator}
	admins   = []string{admin}
	door     = []string{admin, coordinator, rep}
	money    = []string{admin, coordinator, finance}
)

// expectedAccess is the role matrix as the product promises it, written
// out here independently of roles.go: who may call each route. A route the
// app registers that is missing here (or the reverse) fails the test, so a
// new route cannot ship without a decision about who may use it.
var expectedAccess = map[string][]string{
	"GET /healthz": everyone,
	"GET /login":   everyone,
	"POST /login":  everyone,
	"POST /logout": staff,
	"GET /":        staff,

	"GET /customers":               staff,
	"GET /customers/:id":           staff,
	"POST /customers/:id/level":    writers,
	"GET /import":                  writers,
	"POST /import":                 writers,
	"GET /imports/:id":             writers,
	"GET /imports/:id/status.json": writers,

	"GET /users":               admins,
	"POST /users":              admins,
	"POST /users/:id":          admins,
	"POST /users/:id/password": admins,
	"POST /tokens":             admins,
	"POST /tokens/:id/revoke":  admins,

	"GET /api/v1/customers":            staff,
	"POST /api/v1/customers":           writers,
	"GET /api/v1/customers/:id":        staff,
	"GET /api/v1/customers/:id/ledger": staff,
	"POST /api/v1/customers/:id/level": writers,
	"POST /api/v1/audience/preview":    writers,

	"GET /campaigns":                         staff,
	"GET /campaigns/new":                     writers,
	"POST /campaigns":                        writers,
	"GET /campaigns/:id":                     staff,
	"POST /campaigns/:id/schedule":           writers,
	"POST /campaigns/:id/pause":              writers,
	"POST /campaigns/:id/resume":             writers,
	"POST /campaigns/:id/cancel":             writers,
	"POST /campaigns/:id/close":              writers,
	"POST /campaigns/:id/unschedule":         writers,
	"POST /campaigns/:id/gift-codes":         writers,
	"GET /campaigns/:id/checkin":             door,
	"GET /campaigns/:id/checkin/search":      door,
	"POST /campaigns/:id/checkin":            door,
	"POST /campaigns/:id/checkin/undo":       door,
	"GET /c/:token":                          door,
	"POST /c/:token":                         door,
	"GET /outbox":                            writers,
	"GET /outbox/:id":                        writers,
	"GET /outbox/:id/body.html":              writers,
	"GET /r/:token":                          everyone,
	"POST /r/:token":                         everyone,
	"GET /r/:token/event.ics":                everyone,
	"GET /u/:token":                          everyone,
	"POST /u/:token":                         everyone,
	"GET /q/:token.png":                      everyone,
	"POST /webhooks/sendgrid":                everyone, // its credential is SendGrid's signature: see TestSendGridWebhook
	"GET /api/v1/campaigns":                  staff,
	"POST /api/v1/campaigns":                 writers,
	"GET /api/v1/campaigns/:id":              staff,
	"POST /api/v1/campaigns/:id/schedule":    writers,
	"POST /api/v1/campaigns/:id/cancel":      writers,
	"POST /api/v1/campaigns/:id/pause":       writers,
	"POST /api/v1/campaigns/:id/resume":      writers,
	"POST /api/v1/campaigns/:id/close":       writers,
	"GET /api/v1/campaigns/:id/invitations":  staff,
	"POST /api/v1/campaigns/:id/gift-codes":  writers,
	"POST /api/v1/campaigns/:id/checkins":    door,
	"POST /api/v1/referrals":                 door,
	"POST /campaigns/:id/event":              writers,
	"POST /campaigns/:id/rules":              writers,
	"PATCH /api/v1/campaigns/:id/event":      writers,
	"PUT /api/v1/campaigns/:id/rules":        writers,
	"POST /customers/:id/referrals":          door,
	"GET /finance":                           money,
	"GET /audit":                             money,
	"GET /s/:token":                          everyone,
	"POST /s/:token":                         everyone,
	"GET /followups":                         door,
	"POST /followups/:id/done":               door,
	"POST /campaigns/:id/costs":              money,
	"POST /campaigns/:id/costs/:line/remove": money,
	"POST /api/v1/purchases":                 money,
	"POST /api/v1/campaigns/:id/costs":       money,
	"GET /api/v1/campaigns/:id/roi":          money,
	"GET /api/v1/reports/roi":                money,
}

// registeredRoutes lists "METHOD /path" for every route the app answers,
// without HEAD twins and middleware.
func registeredRoutes(e *env) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range e.app.GetRoutes(true) {
		if r.Method == http.MethodHead {
			continue
		}
		k := r.Method + " " + r.Path
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func TestRouteTableIsComplete(t *testing.T) {
	t.Parallel()
	e := setup(t, "sqlite")
	registered := registeredRoutes(e)
	var missing, stale []string
	for _, k := range registered {
		if _, ok := expectedAccess[k]; !ok {
			missing = append(missing, k)
		}
	}
	for k := range expectedAccess {
		found := false
		for _, r := range registered {
			found = found || r == k
		}
		if !found {
			stale = append(stale, k)
		}
	}
	sort.Strings(stale)
	require.Empty(t, missing, "routes the app registers but the role test does not know: add them to expectedAccess")
	require.Empty(t, stale, "routes in expectedAccess that the app does not register")
}

// accessRequest is one concrete request for a route, made for one caller.
type accessRequest struct {
	path string
	form url.Values // for page POSTs
	json any        // for API POSTs
	file []byte     // POST /import: a CSV upload
	// loginRedirectOK: a redirect to /login is this route's success
	// (signing out), not a refusal.
	loginRedirectOK bool
	// after runs once an allowed request went through (to wait for work it
	// started).
	after func(r response)
}

// requestFor builds a harmless, valid request for route as who would make
// it. Destructive routes get throwaway targets so later checks still work.
func requestFor(t *testing.T, e *env, route, who string) accessRequest {
	cust := e.customers[0].ID
	switch route {
	case "GET /healthz", "GET /login", "GET /", "GET /customers", "GET /import", "GET /users",
		"GET /api/v1/customers":
		return accessRequest{path: strings.Fields(route)[1]}
	case "POST /login":
		email := e.users[campaigns.RoleRep].Email
		if who != anonymous {
			email = e.users[campaigns.Role(who)].Email
		}
		return accessRequest{path: "/login", form: url.Values{"email": {email}, "password": {testPassword}}}
	case "POST /logout":
		return accessRequest{path: "/logout", form: url.Values{}, loginRedirectOK: true}
	case "GET /customers/:id":
		return accessRequest{path: idPath("/customers/%d", cust)}
	case "POST /customers/:id/level":
		return accessRequest{path: idPath("/customers/%d/level", cust), form: url.Values{"level": {"3"}, "note": {"role test"}}}
	case "POST /import":
		csv := "name,email\n" + e.unique("Uploaded ") + "," + e.unique("uploaded") + "@example.com\n"
		return accessRequest{path: "/import", file: []byte(csv), after: func(r response) {
			if r.Status == http.StatusSeeOther && strings.HasPrefix(r.Location(), "/imports/") {
				im := e.waitImport(importID(t, r))
				require.Equal(t, "done", im.Status, im.Error)
			}
		}}
	case "GET /imports/:id":
		return accessRequest{path: idPath("/imports/%d", e.newImport())}
	case "GET /imports/:id/status.json":
		return accessRequest{path: idPath("/imports/%d/status.json", e.newImport())}
	case "POST /users":
		return accessRequest{path: "/users", form: url.Values{"email": {e.unique("new") + "@example.com"}, "role": {"rep"}}}
	case "POST /users/:id":
		u := e.newUser(campaigns.RoleRep)
		return accessRequest{path: idPath("/users/%d", u.ID), form: url.Values{"role": {"rep"}}}
	case "POST /users/:id/password":
		u := e.newUser(campaigns.RoleRep)
		return accessRequest{path: idPath("/users/%d/password", u.ID), form: url.Values{}}
	case "POST /tokens":
		return accessRequest{path: "/tokens", form: url.Values{"name": {e.unique("role test ")}, "role": {"rep"}}}
	case "POST /tokens/:id/revoke":
		_, id := e.newToken(campaigns.RoleRep)
		return accessRequest{path: idPath("/tokens/%d/revoke", id), form: url.Values{}}
	case "POST /api/v1/customers":
		return accessRequest{path: "/api/v1/customers", json: map[string]any{
			"name": "Role Test", "email": e.unique("roletest") + "@example.com"}}
	case "GET /api/v1/customers/:id":
		return accessRequest{path: idPath("/api/v1/customers/%d", cust)}
	case "GET /api/v1/customers/:id/ledger":
		return accessRequest{path: idPath("/api/v1/customers/%d/ledger", cust)}
	case "POST /api/v1/customers/:id/level":
		return accessRequest{path: idPath("/api/v1/customers/%d/level", cust), json: map[string]any{"level": 3, "note": "role test"}}
	case "POST /api/v1/audience/preview":
		return accessRequest{path: "/api/v1/audience/preview", json: map[string]any{"min_spend_cents": 0}}
	case "GET /campaigns", "GET /campaigns/new", "GET /outbox", "GET /api/v1/campaigns":
		return accessRequest{path: strings.Fields(route)[1]}
	case "POST /campaigns":
		return accessRequest{path: "/campaigns", form: url.Values{"kind": {"gift"}, "name": {e.unique("Form gift ")},
			"time_zone": {"UTC"}, "gift_type": {"free_upgrade"}, "fulfilment": {"manual"}}}
	case "GET /campaigns/:id", "GET /api/v1/campaigns/:id", "GET /api/v1/campaigns/:id/invitations",
		"GET /campaigns/:id/checkin", "GET /campaigns/:id/checkin/search":
		p := strings.Replace(strings.Fields(route)[1], ":id", "%d", 1)
		return accessRequest{path: cid(p, e.newSent().campaign)}
	case "POST /campaigns/:id/schedule":
		return accessRequest{path: cid("/campaigns/%d/schedule", e.newDraft()), form: url.Values{"when": {"now"}}}
	case "POST /campaigns/:id/pause", "POST /campaigns/:id/cancel", "POST /campaigns/:id/unschedule",
		"POST /api/v1/campaigns/:id/pause", "POST /api/v1/campaigns/:id/cancel":
		c := e.newDraft()
		_, err := e.store.Schedule(context.Background(), c.ID, campaigns.ScheduleInput{Now: true})
		require.NoError(t, err)
		p := strings.Replace(strings.Fields(route)[1], ":id", "%d", 1)
		return accessRequest{path: cid(p, c), form: url.Values{}, json: map[string]any{}}
	case "POST /campaigns/:id/resume", "POST /api/v1/campaigns/:id/resume":
		c := e.newDraft()
		_, err := e.store.Schedule(context.Background(), c.ID, campaigns.ScheduleInput{Now: true})
		require.NoError(t, err)
		_, err = e.store.Pause(context.Background(), c.ID)
		require.NoError(t, err)
		p := strings.Replace(strings.Fields(route)[1], ":id", "%d", 1)
		return accessRequest{path: cid(p, c), form: url.Values{}, json: map[string]any{}}
	case "POST /campaigns/:id/close", "POST /api/v1/campaigns/:id/close":
		f := e.newSent()
		_, err := e.store.FinishIfDone(context.Background(), f.campaign.ID)
		require.NoError(t, err)
		p := strings.Replace(strings.Fields(route)[1], ":id", "%d", 1)
		return accessRequest{path: cid(p, f.campaign), form: url.Values{}, json: map[string]any{}}
	case "POST /campaigns/:id/gift-codes":
		return accessRequest{path: cid("/campaigns/%d/gift-codes", e.newGift()), form: url.Values{"codes": {e.unique("CODE-")}}}
	case "POST /api/v1/campaigns/:id/gift-codes":
		return accessRequest{path: cid("/api/v1/campaigns/%d/gift-codes", e.newGift()), json: map[string]any{"codes": []string{e.unique("CODE-")}}}
	case "POST /campaigns/:id/checkin":
		f := e.newSent()
		return accessRequest{path: cid("/campaigns/%d/checkin", f.campaign), form: url.Values{"customer_id": {fmt.Sprint(f.claims[0].CustomerID)}}}
	case "POST /campaigns/:id/checkin/undo":
		f := e.newSent()
		return accessRequest{path: cid("/campaigns/%d/checkin/undo", f.campaign), form: url.Values{"invitation_id": {fmt.Sprint(f.claims[0].ID)}}}
	case "POST /api/v1/campaigns/:id/checkins":
		f := e.newSent()
		return accessRequest{path: cid("/api/v1/campaigns/%d/checkins", f.campaign), json: map[string]any{"customer_id": f.claims[0].CustomerID}}
	case "GET /c/:token", "POST /c/:token":
		return accessRequest{path: "/c/" + e.newSent().token(campaigns.TokenCheckin), form: url.Values{}}
	case "GET /outbox/:id", "GET /outbox/:id/body.html":
		p := strings.Replace(strings.Fields(route)[1], ":id", "%d", 1)
		return accessRequest{path: fmt.Sprintf(p, e.newSent().outboxID)}
	case "GET /r/:token", "GET /r/:token/event.ics":
		return accessRequest{path: strings.Replace(strings.Fields(route)[1], ":token", e.newSent().token(campaigns.TokenRSVP), 1)}
	case "POST /r/:token":
		return accessRequest{path: "/r/" + e.newSent().token(campaigns.TokenRSVP), form: url.Values{"answer": {"yes"}}}
	case "GET /u/:token", "POST /u/:token":
		return accessRequest{path: "/u/" + e.newSent().token(campaigns.TokenUnsubscribe), form: url.Values{}}
	case "GET /q/:token.png":
		return accessRequest{path: "/q/" + e.newSent().token(campaigns.TokenCheckin) + ".png"}
	case "POST /api/v1/campaigns":
		return accessRequest{path: "/api/v1/campaigns", json: map[string]any{"kind": "gift", "name": e.unique("API gift "),
			"time_zone": "UTC", "gift": map[string]any{"type": "free_upgrade"}}}
	case "POST /api/v1/campaigns/:id/schedule":
		return accessRequest{path: cid("/api/v1/campaigns/%d/schedule", e.newDraft()), json: map[string]any{"now": true}}
	case "POST /campaigns/:id/event":
		return accessRequest{path: cid("/campaigns/%d/event", e.newDraft()), form: url.Values{"venue": {"Hall"},
			"starts_at": {"2027-01-01T10:00"}, "ends_at": {"2027-01-01T12:00"}, "capacity": {"5"}}}
	case "POST /campaigns/:id/rules":
		return accessRequest{path: cid("/campaigns/%d/rules", e.newDraft()), form: url.Values{"reset": {"1"}}}
	case "PATCH /api/v1/campaigns/:id/event":
		return accessRequest{path: cid("/api/v1/campaigns/%d/event", e.newDraft()), json: map[string]any{"venue": "Hall"}}
	case "PUT /api/v1/campaigns/:id/rules":
		return accessRequest{path: cid("/api/v1/campaigns/%d/rules", e.newDraft()), json: map[string]any{"rules": []any{}}}
	case "POST /customers/:id/referrals":
		return accessRequest{path: idPath("/customers/%d/referrals", cust), form: url.Values{"name": {"Ref Form"},
			"email": {e.unique("refform") + "@example.com"}}}
	case "GET /s/:token", "POST /s/:token":
		return accessRequest{path: "/s/" + e.newSurvey() + "?score=9", form: url.Values{"comment": {"lovely"}}}
	case "GET /followups":
		return accessRequest{path: "/followups"}
	case "POST /followups/:id/done":
		id := e.newDetractor()
		if who == rep { // a rep marks only their own customers' detractors
			e.ownDetractor(id, e.users[campaigns.RoleRep].ID)
		}
		return accessRequest{path: fmt.Sprintf("/followups/%d/done", id), form: url.Values{}}
	case "GET /finance", "GET /api/v1/reports/roi", "GET /audit":
		return accessRequest{path: strings.Fields(route)[1]}
	case "POST /campaigns/:id/costs":
		return accessRequest{path: cid("/campaigns/%d/costs", e.newDraft()), form: url.Values{"category": {"venue"}, "amount": {"100"}, "per": {"fixed"}}}
	case "POST /campaigns/:id/costs/:line/remove":
		c := e.newDraft()
		amt := int64(100)
		l, err := e.store.AddCost(context.Background(), c.ID, campaigns.CostInput{Category: "venue", AmountCents: &amt, Per: "fixed"}, "t")
		require.NoError(t, err)
		return accessRequest{path: fmt.Sprintf("/campaigns/%d/costs/%d/remove", c.ID, l.ID), form: url.Values{}}
	case "POST /api/v1/campaigns/:id/costs":
		return accessRequest{path: cid("/api/v1/campaigns/%d/costs", e.newDraft()), json: map[string]any{"category": "venue", "amount_cents": 100, "per": "fixed"}}
	case "GET /api/v1/campaigns/:id/roi":
		return accessRequest{path: cid("/api/v1/campaigns/%d/roi", e.newSent().campaign)}
	case "POST /api/v1/purchases":
		return accessRequest{path: "/api/v1/purchases", json: map[string]any{"external_id": e.unique("ORD-"), "customer_id": cust,
			"amount_cents": 5000, "purchased_at": "2026-10-01T10:00:00Z"}}
	case "POST /api/v1/referrals":
		return accessRequest{path: "/api/v1/referrals", json: map[string]any{"referrer_id": cust,
			"referred": map[string]any{"name": "Ref Erred", "email": e.unique("referred") + "@example.com"}}}
	}
	t.Fatalf("no request for %s: teach requestFor how to call it", route)
	return accessRequest{}
}

// checkAccess asserts that r is what an allowed or a refused caller sees.
func checkAccess(t *testing.T, what string, r response, req accessRequest, who string, allowed bool) {
	t.Helper()
	switch {
	case allowed:
		require.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, r.Status,
			"%s should be allowed: %d %s", what, r.Status, r.Body)
		require.Less(t, r.Status, 500, "%s: %s", what, r.Body)
		// A template that fails part-way can leave its error in the page.
		require.NotContains(t, r.Body, "error calling", "%s renders whole", what)
		if !req.loginRedirectOK {
			require.False(t, r.redirectsToLogin(), "%s should be allowed, but redirects to %s", what, r.Location())
		}
	case who == anonymous:
		if r.Status == http.StatusSeeOther {
			require.True(t, strings.HasPrefix(r.Location(), "/login?next="), "%s: anonymous redirected to %q", what, r.Location())
		} else {
			require.Equal(t, http.StatusUnauthorized, r.Status, "%s: anonymous should be refused: %s", what, r.Body)
		}
	default:
		require.Equal(t, http.StatusForbidden, r.Status, "%s should be refused with 403: %s", what, r.Body)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestRoleMatrix calls every route as every role, through a browser session
// and (for /api/) with an API token, and checks who gets through.
func TestRoleMatrix(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		e := setup(t, dialect)
		routes := registeredRoutes(e)
		sessions := map[string]*client{anonymous: e.anon()}
		for _, r := range allRoles {
			sessions[string(r)] = e.signIn(r)
		}
		whos := append([]string{anonymous}, staff...)
		for _, route := range routes {
			if route == "POST /webhooks/sendgrid" {
				continue // SendGrid's signature is its credential: TestSendGridWebhook
			}
			allowedWho, known := expectedAccess[route]
			require.True(t, known, "route %s is not in expectedAccess", route)
			method := strings.Fields(route)[0]
			isAPI := strings.HasPrefix(strings.Fields(route)[1], "/api/")
			for _, who := range whos {
				allowed := contains(allowedWho, who)

				// Through a browser session, with a valid CSRF token.
				req := requestFor(t, e, route, who)
				c := sessions[who]
				if route == "POST /logout" || route == "POST /login" {
					// These end or replace the session: use a fresh one.
					if who == anonymous {
						c = e.anon()
					} else {
						c = e.signIn(campaigns.Role(who))
					}
				}
				var r response
				switch {
				case method == http.MethodGet:
					r = c.get(req.path)
				case req.file != nil:
					r = c.upload(req.path, c.csrf, "customers.csv", req.file)
				case isAPI:
					r = c.sessionAPI(method, req.path, req.json)
				default:
					r = c.submit(req.path, req.form)
				}
				checkAccess(t, route+" as "+who+" (session)", r, req, who, allowed)
				if allowed && req.after != nil {
					req.after(r)
				}

				// With an API token (none for anonymous).
				if !isAPI {
					continue
				}
				req = requestFor(t, e, route, who)
				token := ""
				if who != anonymous {
					token = e.tokens[campaigns.Role(who)]
				}
				r = e.api(method, req.path, token, req.json)
				checkAccess(t, route+" as "+who+" (token)", r, req, who, allowed)
				if !allowed {
					code := "forbidden"
					if who == anonymous {
						code = "unauthorized"
					}
					require.Equal(t, code, r.Err(t).Error.Code, "%s as %s (token)", route, who)
				}
			}
		}
	})
}

// TestLoginRedirectKeepsTheTarget: an anonymous visitor sent to sign in
// comes back to the page they asked for, and never to another site.
func TestLoginRedirectKeepsTheTarget(t *testing.T) {
	t.Parallel()
	e := setup(t, "sqlite")
	c := e.anon()
	r := c.get("/customers?q=ann")
	require.Equal(t, http.StatusSeeOther, r.Status)
	loc, err := url.Parse(r.Location())
	require.NoError(t, err)
	require.Equal(t, "/login", loc.Path)
	next := loc.Query().Get("next")
	require.Equal(t, "/customers?q=ann", next)

	r = c.get(r.Location())
	require.Equal(t, http.StatusOK, r.Status)
	require.Contains(t, r.Body, `name="next" value="/customers?q=ann"`)
	c.csrf = hiddenCSRF(t, r.Body)
	r = c.postForm("/login", url.Values{"_csrf": {c.csrf}, "email": {e.users[campaigns.RoleRep].Email},
		"password": {testPassword}, "next": {next}})
	require.Equal(t, http.StatusSeeOther, r.Status, r.Body)
	require.Equal(t, "/customers?q=ann", r.Location())

	for _, evil := range []string{"//evil.example.com/", "https://evil.example.com/", "/\\evil.example.com"} {
		c := e.anon()
		r := c.postForm("/login", url.Values{"_csrf": {c.csrf}, "email": {e.users[campaigns.RoleRep].Email},
			"password": {testPassword}, "next": {evil}})
		require.Equal(t, http.StatusSeeOther, r.Status, r.Body)
		require.Equal(t, "/", r.Location(), "next=%s", evil)
	}
}

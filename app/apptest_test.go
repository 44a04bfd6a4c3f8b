package app_test

// A small harness for the web layer's tests: a fresh store per test with
// one user and one API token per role and a few customers, the Fiber app
// over it, and a client that keeps a cookie jar, signs in through the login
// form and sends the CSRF token as a browser would.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/app"
	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
	"github.com/rapport/rapport/config"
)

// testPassword is every harness user's password.
const testPassword = "correct-horse-battery"

// anonymous names the caller without a session or token in role tables.
const anonymous = "anonymous"

var allRoles = []campaigns.Role{campaigns.RoleAdmin, campaigns.RoleCoordinator, campaigns.RoleRep, campaigns.RoleFinance}

// env is one app over one fresh database.
type env struct {
	t        *testing.T
	dialect  string
	store    *campaigns.Store
	app      *fiber.App
	users    map[campaigns.Role]*campaigns.User
	tokens   map[campaigns.Role]string // plaintext bearer tokens
	tokenIDs map[campaigns.Role]int64
	// customers are Ann (Chicago, $1,500, level 2), Bob (Evanston, $250,
	// level 4) and Cy (Milwaukee, $12,000, level 6).
	customers []*campaigns.Customer
	seq       atomic.Int64
}

// forEachDB runs fn once per available database (SQLite always, PostgreSQL
// when TEST_DATABASE_URL is set) as parallel subtests of a parallel test.
func forEachDB(t *testing.T, fn func(t *testing.T, dialect string)) {
	t.Helper()
	t.Parallel()
	for _, d := range campaignstest.Available(t) {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			fn(t, d)
		})
	}
}

// quietLog keeps the app's info logs out of the test output; warnings and
// errors still show.
var quietLog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// setup builds the app over a fresh store with one user and one token per
// role and three customers. deps may adjust the app's dependencies.
func setup(t *testing.T, dialect string, deps ...func(*app.Deps)) *env {
	t.Helper()
	ctx := context.Background()
	s := campaignstest.Open(t, dialect)
	e := &env{t: t, dialect: dialect, store: s, users: map[campaigns.Role]*campaigns.User{},
		tokens: map[campaigns.Role]string{}, tokenIDs: map[campaigns.Role]int64{}}
	for _, r := range allRoles {
		u, err := s.CreateUser(ctx, campaigns.NewUser{Email: string(r) + "@example.com", Name: "The " + string(r), Role: r, Password: testPassword})
		require.NoError(t, err)
		e.users[r] = u
		plain, tok, err := s.CreateToken(ctx, string(r)+" script", r, &u.ID)
		require.NoError(t, err)
		e.tokens[r], e.tokenIDs[r] = plain, tok.ID
	}
	for _, c := range []struct {
		name, metro string
		cents       int64
		level       campaigns.Level
	}{
		{"Ann Archer", "Chicago", 150000, 2},
		{"Bob Baker", "Evanston", 25000, 4},
		{"Cy Cooper", "Milwaukee", 1200000, 6},
	} {
		metro, cents, level := c.metro, c.cents, c.level
		first := strings.ToLower(strings.Fields(c.name)[0])
		res, err := s.UpsertCustomer(ctx, campaigns.CustomerInput{ExternalID: "EXT-" + first, Name: c.name,
			Email: first + "@customers.example.com", MetroArea: &metro, AnnualSpendCents: &cents, Level: &level},
			campaigns.UpsertMeta{Actor: "setup", Source: "test", Rule: campaigns.RuleImport})
		require.NoError(t, err)
		e.customers = append(e.customers, res.Customer)
	}
	d := app.Deps{Store: s, Config: config.Config{BaseURL: "http://rapport.test"}, Log: quietLog, LoginAttempts: 1000}
	for _, f := range deps {
		f(&d)
	}
	f, err := app.New(d)
	require.NoError(t, err)
	e.app = f
	return e
}

// unique returns a string no other call in this env returns.
func (e *env) unique(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, e.seq.Add(1))
}

// newUser creates a throwaway user of role; its password is testPassword.
func (e *env) newUser(role campaigns.Role) *campaigns.User {
	e.t.Helper()
	u, err := e.store.CreateUser(context.Background(), campaigns.NewUser{Email: e.unique("user") + "@example.com",
		Role: role, Password: testPassword})
	require.NoError(e.t, err)
	return u
}

// newToken creates a throwaway API token of role and returns it and its id.
func (e *env) newToken(role campaigns.Role) (string, int64) {
	e.t.Helper()
	plain, tok, err := e.store.CreateToken(context.Background(), e.unique("token"), role, nil)
	require.NoError(e.t, err)
	return plain, tok.ID
}

// newImport runs a small customer import through the store and returns its id.
func (e *env) newImport() int64 {
	e.t.Helper()
	csv := "name,email\n" + e.unique("Imported ") + "," + e.unique("imported") + "@example.com\n"
	res, err := e.store.ImportCustomers(context.Background(), strings.NewReader(csv), campaigns.ImportOptions{Filename: "small.csv", Actor: "test"})
	require.NoError(e.t, err)
	return res.ID
}

// waitImport waits (at most about ten seconds) for an import to leave "running".
func (e *env) waitImport(id int64) *campaigns.Import {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		im, err := e.store.GetImport(context.Background(), id)
		require.NoError(e.t, err)
		if im.Status != "running" {
			return im
		}
		require.True(e.t, time.Now().Before(deadline), "import %d is still running", id)
		time.Sleep(20 * time.Millisecond)
	}
}

// customer reloads a customer from the store.
func (e *env) customer(id int64) *campaigns.Customer {
	e.t.Helper()
	c, err := e.store.Customer(context.Background(), id)
	require.NoError(e.t, err)
	return c
}

// response is what a test looks at after a request.
type response struct {
	Status  int
	Header  http.Header
	Cookies []*http.Cookie
	Body    string
}

// Location is the redirect target, if any.
func (r response) Location() string { return r.Header.Get("Location") }

// redirectsToLogin reports a redirect to the sign-in page.
func (r response) redirectsToLogin() bool {
	return r.Status >= 300 && r.Status < 400 && strings.HasPrefix(r.Location(), "/login")
}

// JSON decodes the body into a generic map.
func (r response) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.Body), &m), "body is not a JSON object: %s", r.Body)
	return m
}

// Decode decodes the body into v.
func (r response) Decode(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal([]byte(r.Body), v), "body: %s", r.Body)
}

// apiError is the error body the API answers with.
type apiError struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Fields  map[string]string `json:"fields"`
	} `json:"error"`
}

// Err decodes an API error body, requiring a code and a message.
func (r response) Err(t *testing.T) apiError {
	t.Helper()
	var e apiError
	r.Decode(t, &e)
	require.NotEmpty(t, e.Error.Code, "error body without a code: %s", r.Body)
	require.NotEmpty(t, e.Error.Message, "error body without a message: %s", r.Body)
	return e
}

// cookie returns the Set-Cookie of name in this response, or nil.
func (r response) cookie(name string) *http.Cookie {
	for _, c := range r.Cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// serve runs one request through the app without any cookie handling.
func (e *env) serve(req *http.Request) response {
	e.t.Helper()
	res, err := e.app.Test(req, -1)
	require.NoError(e.t, err, "%s %s", req.Method, req.URL)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	return response{Status: res.StatusCode, Header: res.Header, Cookies: res.Cookies(), Body: string(b)}
}

// api calls the JSON API with a bearer token ("" sends none). body may be
// nil, a string (sent as is) or a value encoded as JSON.
func (e *env) api(method, path, token string, body any) response {
	e.t.Helper()
	return e.serve(e.apiRequest(method, path, token, body))
}

// apiRequest builds the request api sends.
func (e *env) apiRequest(method, path, token string, body any) *http.Request {
	e.t.Helper()
	req := httptest.NewRequest(method, path, jsonBody(e.t, body))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

func jsonBody(t *testing.T, body any) io.Reader {
	switch b := body.(type) {
	case nil:
		return nil
	case string:
		return strings.NewReader(b)
	case []byte:
		return bytes.NewReader(b)
	}
	js, err := json.Marshal(body)
	require.NoError(t, err)
	return bytes.NewReader(js)
}

// client is a browser: a cookie jar and the page's CSRF token.
type client struct {
	e    *env
	t    *testing.T
	jar  map[string]string
	csrf string
}

// anon returns a client that has opened the sign-in page (so it holds a
// session cookie and a CSRF token) without signing in.
func (e *env) anon() *client {
	e.t.Helper()
	c := &client{e: e, t: e.t, jar: map[string]string{}}
	r := c.get("/login")
	require.Equal(e.t, http.StatusOK, r.Status, r.Body)
	c.csrf = hiddenCSRF(e.t, r.Body)
	return c
}

// signIn signs in through the login form as the harness user of role.
func (e *env) signIn(role campaigns.Role) *client {
	e.t.Helper()
	return e.signInAs(e.users[role].Email, testPassword)
}

// signInAs signs in through the login form and requires success.
func (e *env) signInAs(email, password string) *client {
	e.t.Helper()
	c := e.anon()
	r := c.login(email, password)
	require.Equal(e.t, http.StatusSeeOther, r.Status, "sign in as %s: %s", email, r.Body)
	require.Equal(e.t, "/", r.Location())
	c.refreshCSRF()
	return c
}

// login posts the sign-in form with the token of the login page.
func (c *client) login(email, password string) response {
	c.t.Helper()
	return c.postForm("/login", url.Values{"_csrf": {c.csrf}, "email": {email}, "password": {password}})
}

// refreshCSRF reads the CSRF token from the meta tag of a page.
func (c *client) refreshCSRF() {
	c.t.Helper()
	r := c.get("/customers")
	require.Equal(c.t, http.StatusOK, r.Status, r.Body)
	c.csrf = metaCSRF(c.t, r.Body)
}

var (
	metaCSRFRe   = regexp.MustCompile(`<meta name="csrf-token" content="([^"]*)">`)
	hiddenCSRFRe = regexp.MustCompile(`<input type="hidden" name="_csrf" value="([^"]*)">`)
)

func metaCSRF(t *testing.T, body string) string {
	t.Helper()
	m := metaCSRFRe.FindStringSubmatch(body)
	require.NotNil(t, m, "no csrf-token meta tag in the page")
	require.NotEmpty(t, m[1], "empty csrf-token meta tag")
	return m[1]
}

func hiddenCSRF(t *testing.T, body string) string {
	t.Helper()
	m := hiddenCSRFRe.FindStringSubmatch(body)
	require.NotNil(t, m, "no _csrf hidden input in the page")
	require.NotEmpty(t, m[1], "empty _csrf hidden input")
	return m[1]
}

// do sends req with the jar's cookies and keeps the cookies it sets.
func (c *client) do(req *http.Request) response {
	c.t.Helper()
	for k, v := range c.jar {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	r := c.e.serve(req)
	for _, ck := range r.Cookies {
		if ck.MaxAge < 0 || ck.Value == "" || (!ck.Expires.IsZero() && ck.Expires.Before(time.Now())) {
			delete(c.jar, ck.Name)
			continue
		}
		c.jar[ck.Name] = ck.Value
	}
	return r
}

// get fetches a page.
func (c *client) get(path string) response {
	c.t.Helper()
	return c.do(httptest.NewRequest(http.MethodGet, path, nil))
}

// follow fetches the page a redirect points to.
func (c *client) follow(r response) response {
	c.t.Helper()
	require.True(c.t, r.Status >= 300 && r.Status < 400, "not a redirect: %d %s", r.Status, r.Body)
	return c.get(r.Location())
}

// postForm posts form exactly as given (no CSRF token added).
func (c *client) postForm(path string, form url.Values) response {
	c.t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

// submit posts form with the client's CSRF token, as the page's form would.
func (c *client) submit(path string, form url.Values) response {
	c.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	f.Set("_csrf", c.csrf)
	return c.postForm(path, f)
}

// upload posts a multipart form with one file field "file" and the CSRF
// token in the form ("" sends none).
func (c *client) upload(path, csrf, filename string, content []byte) response {
	c.t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if csrf != "" {
		require.NoError(c.t, w.WriteField("_csrf", csrf))
	}
	fw, err := w.CreateFormFile("file", filename)
	require.NoError(c.t, err)
	_, err = fw.Write(content)
	require.NoError(c.t, err)
	require.NoError(c.t, w.Close())
	req := httptest.NewRequest(http.MethodPost, path, &buf)
	req.Header.Set("Content-Type", w.FormDataContentType())
	return c.do(req)
}

// sessionAPI calls the API with the session cookie (as the app's own
// scripts do), sending the CSRF token in X-CSRF-Token on writes.
func (c *client) sessionAPI(method, path string, body any) response {
	c.t.Helper()
	req := httptest.NewRequest(method, path, jsonBody(c.t, body))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if method != http.MethodGet && c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	return c.do(req)
}

// importID reads the id from a redirect to /imports/:id.
func importID(t *testing.T, r response) int64 {
	t.Helper()
	require.Equal(t, http.StatusSeeOther, r.Status, r.Body)
	loc := r.Location()
	require.True(t, strings.HasPrefix(loc, "/imports/"), "redirect to %q", loc)
	id, err := strconv.ParseInt(strings.TrimPrefix(loc, "/imports/"), 10, 64)
	require.NoError(t, err, loc)
	return id
}

func idPath(format string, id int64) string { return fmt.Sprintf(format, id) }

package app_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/app"
	"github.com/rapport/rapport/campaigns"
)

// lockedBuffer is a log sink the app may write from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Passwords, API tokens, session cookies and the public links' tokens
// never reach the logs, even at debug level and when requests fail.
func TestSecretsAreNeverLogged(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	e := setup(t, "sqlite", func(d *app.Deps) {
		d.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	sent := e.newSent()
	secrets := map[string]string{"password": testPassword}
	for _, kind := range []string{campaigns.TokenRSVP, campaigns.TokenUnsubscribe} {
		secrets[kind+" link"] = sent.token(kind)
	}

	// Sign-ins, good and bad; a session; a token made on the users page.
	c := e.signIn(campaigns.RoleAdmin)
	secrets["session cookie"] = c.jar["rapport_session"]
	require.NotEmpty(t, secrets["session cookie"])
	bad := e.anon().login(e.users[campaigns.RoleRep].Email, "wrong "+testPassword)
	require.Equal(t, http.StatusUnauthorized, bad.Status)
	r := c.submit("/tokens", url.Values{"name": {"nightly sync"}, "role": {"coordinator"}})
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	created := strings.Fields(r.Body[strings.Index(r.Body, `<code class="secret">`)+len(`<code class="secret">`):])[0]
	created = strings.TrimSuffix(created, "</code>")
	secrets["new API token"] = created
	secrets["API token"] = e.tokens[campaigns.RoleCoordinator]
	require.Equal(t, http.StatusOK, e.api(http.MethodGet, "/api/v1/customers", created, nil).Status)
	require.Equal(t, http.StatusOK, e.api(http.MethodGet, "/api/v1/customers", e.tokens[campaigns.RoleCoordinator], nil).Status)
	require.Equal(t, http.StatusUnauthorized, e.api(http.MethodGet, "/api/v1/customers", created+"x", nil).Status)
	r = c.submit("/users", url.Values{"email": {"new.rep@example.com"}, "role": {"rep"}, "password": {"a brand new password 1"}})
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	secrets["new user's password"] = "a brand new password 1"

	// The public links: pages, answers, a broken answer, a one-click POST.
	guest := e.anon()
	rsvp := sent.token(campaigns.TokenRSVP)
	require.Equal(t, http.StatusOK, guest.get("/r/"+rsvp).Status)
	require.Equal(t, http.StatusOK, guest.postForm("/r/"+rsvp, url.Values{"answer": {"yes"}}).Status)
	require.Equal(t, http.StatusUnprocessableEntity, guest.postForm("/r/"+rsvp, url.Values{"answer": {"maybe"}}).Status)
	require.Equal(t, http.StatusOK, guest.postForm("/u/"+sent.token(campaigns.TokenUnsubscribe), url.Values{"List-Unsubscribe": {"One-Click"}}).Status)

	out := logs.String()
	require.NotEmpty(t, out, "the app did log")
	for name, s := range secrets {
		require.NotEmpty(t, s, name)
		require.NotContains(t, out, s, "the %s is in the logs", name)
	}
}

// An idle session ends after the session lifetime; the next page asks the
// person to sign in again.
func TestSessionsExpire(t *testing.T) {
	t.Parallel()
	// Three seconds: with one, signing in and the first page under the
	// race detector and parallel tests once took longer than the session.
	e := setup(t, "sqlite", func(d *app.Deps) { d.SessionTTL = 3 * time.Second })
	c := e.signIn(campaigns.RoleCoordinator)
	require.Equal(t, http.StatusOK, c.get("/customers").Status)
	time.Sleep(4 * time.Second)
	r := c.get("/customers")
	require.Equal(t, http.StatusSeeOther, r.Status)
	require.True(t, strings.HasPrefix(r.Location(), "/login"), r.Location())
}

// HTML and SQL typed into a campaign's text fields are stored as typed
// and come back escaped on every page that shows them.
func TestPayloadsInCampaignFields(t *testing.T) {
	t.Parallel()
	e := setup(t, "sqlite")
	const sqlName = `Robert'); DROP TABLE customers;--`
	in := eventInput(xssName + " " + sqlName)
	in.Event.Venue, in.Event.Address = xssCompany, sqlName
	cp, err := e.store.CreateCampaign(context.Background(), in, "test")
	require.NoError(t, err)
	got, err := e.store.Campaign(context.Background(), cp.ID)
	require.NoError(t, err)
	require.Equal(t, xssName+" "+sqlName, got.Name, "stored verbatim")
	require.Equal(t, sqlName, got.Address)

	c := e.signIn(campaigns.RoleAdmin)
	for _, p := range []string{"/", "/campaigns", cid("/campaigns/%d", cp), cid("/campaigns/%d/checkin", cp)} {
		r := c.get(p)
		require.Equal(t, http.StatusOK, r.Status, p)
		requireEscaped(t, p, r.Body)
	}
	r := c.get(cid("/campaigns/%d", cp))
	require.Contains(t, r.Body, "&lt;script&gt;alert(1)&lt;/script&gt;")
	require.Contains(t, r.Body, "Robert&#39;); DROP TABLE customers;--")
	require.Equal(t, http.StatusOK, c.get("/customers").Status, "the customers table is still there")
}

// Package app is Rapport's web layer: Fiber routes, thin handlers,
// middleware (sessions, CSRF, roles, rate limits), the JSON API and the HTML
// pages. Handlers call the campaigns package; they never write SQL.
package app

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/csrf"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
	"github.com/gofiber/fiber/v2/middleware/helmet"
	"github.com/gofiber/fiber/v2/middleware/limiter"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/gofiber/fiber/v2/middleware/session"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/config"
	"github.com/rapport/rapport/views"
)

// Deps is what the web layer is built from.
type Deps struct {
	Store  *campaigns.Store
	Config config.Config
	Log    *slog.Logger
	// LoginAttempts is how many sign-in attempts one address may make per
	// LoginWindow (default 10 per 15 minutes).
	LoginAttempts int
	LoginWindow   time.Duration
	// Background counts work a request started that outlives it (web
	// imports); serve waits for it at shutdown. Nil: nobody waits.
	Background *sync.WaitGroup
	// Imports is the context web imports run in: serve cancels it, with
	// the reason, when it can wait for them no longer, and each records
	// that it failed and why. Nil: they run until done.
	Imports context.Context
	// SessionTTL is how long an idle session lives (default 12 hours).
	SessionTTL time.Duration
	// MailerName says where email goes ("sendgrid" or "outbox"), for pages.
	MailerName string
	// Webhook verifies SendGrid's signed events; nil refuses every event.
	Webhook WebhookVerifier
	// ParseEvents reads a verified webhook body (jobs.ParseEvents).
	ParseEvents func([]byte) ([]campaigns.EmailEvent, error)
}

// WebhookVerifier checks and parses SendGrid's event webhook (jobs.WebhookVerifier).
type WebhookVerifier interface {
	Verify(payload []byte, signature, timestamp string, now time.Time) error
}

// App holds the handlers' dependencies.
type App struct {
	store    *campaigns.Store
	cfg      config.Config
	log      *slog.Logger
	sessions *session.Store
	fiber    *fiber.App
	routes_  []Route
	deps     Deps
}

// Limits on request bodies: JSON and forms are small; CSV uploads are not.
const (
	maxBodyBytes   = 1 << 20
	maxUploadBytes = 512 << 20
	requestTimeout = 30 * time.Second
)

// New builds the Fiber application with every route.
func New(d Deps) (*fiber.App, error) {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.LoginAttempts == 0 {
		d.LoginAttempts = 10
	}
	if d.LoginWindow == 0 {
		d.LoginWindow = 15 * time.Minute
	}
	if d.SessionTTL == 0 {
		d.SessionTTL = 12 * time.Hour
	}
	engine, err := views.NewEngine()
	if err != nil {
		return nil, err
	}
	a := &App{store: d.Store, cfg: d.Config, log: d.Log, deps: d}
	f := fiber.New(fiber.Config{
		Views:                 engine,
		ErrorHandler:          a.errorHandler,
		BodyLimit:             maxUploadBytes,
		StreamRequestBody:     true,
		ReadBufferSize:        16 << 10, // headers up to 16 KiB (long cookies, tokens)
		ReadTimeout:           60 * time.Second,
		WriteTimeout:          60 * time.Second,
		IdleTimeout:           120 * time.Second,
		DisableStartupMessage: true,
		// Handlers keep nothing from the request after they return, except
		// through utils.CopyString; see ARCHITECTURE.md.
		Immutable: false,
	})
	a.fiber = f
	a.sessions = session.New(session.Config{
		Storage:        d.Store.KV(),
		Expiration:     d.SessionTTL,
		KeyLookup:      "cookie:rapport_session",
		CookieHTTPOnly: true,
		CookieSameSite: "Lax",
		CookieSecure:   d.Config.SecureCookies(),
		CookiePath:     "/",
	})

	f.Use(recover.New())
	f.Use(helmet.New(helmet.Config{
		ContentSecurityPolicy: "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
			"frame-ancestors 'none'; form-action 'self'; base-uri 'self'; object-src 'none'",
		ReferrerPolicy:            "same-origin",
		XFrameOptions:             "DENY",
		CrossOriginEmbedderPolicy: "unsafe-none",
	}))
	f.Use(func(c *fiber.Ctx) error {
		// Every request gets a deadline that services see through UserContext.
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		c.SetUserContext(ctx)
		return c.Next()
	})
	f.Use("/static", filesystem.New(filesystem.Config{Root: http.FS(views.Static()), MaxAge: 3600}))
	f.Get("/healthz", a.healthz)
	if d.Store.Dialect() == config.Postgres {
		// Eight, of the process's 20 connections: the rest serve batches,
		// the scheduler and requests that read on two connections at once.
		// Against 16, at 64 concurrent requests: RSVP again p99 23-25 ->
		// 18 ms, check-in 18-21 -> 14-17 ms, throughput the same.
		f.Use(admit(8))
	}
	f.Use(a.loadUser)
	f.Use(csrf.New(csrf.Config{
		Next:           a.skipCSRF,
		Session:        a.sessions,
		Extractor:      csrfExtractor,
		CookieName:     "rapport_csrf",
		CookieSameSite: "Lax",
		CookieHTTPOnly: true,
		CookieSecure:   d.Config.SecureCookies(),
		Expiration:     d.SessionTTL,
		ContextKey:     "csrf",
		SessionKey:     csrfSessionKey,
		ErrorHandler: func(c *fiber.Ctx, err error) error {
			return &campaigns.Error{Code: campaigns.EFORBIDDEN, Message: "the form expired or did not come from Rapport; reload the page and try again"}
		},
	}))
	a.register(f)
	f.Use(func(c *fiber.Ctx) error {
		return campaigns.Errorf(campaigns.ENOTFOUND, "there is nothing at %s", c.Path())
	})
	return f, nil
}

const csrfSessionKey = "csrf_token"

// admit lets at most n requests past at once and queues the rest first
// come, first served. Without it a busy moment queued them in database/sql,
// which gives a freed connection to a random waiter (under 64 concurrent
// check-ins: 4,800 req/s, p99 49 ms; with it 8,600, p99 18 ms;
// docs/performance.md). A request whose deadline passes in the queue gets a 503.
// A request that goes on to wait for a batch (an RSVP answer waiting for
// its event's settle queue, campaigns.WithWaitHook) gives its place up
// then: held, it kept those batches small.
func admit(n int) fiber.Handler {
	slots := make(chan struct{}, n)
	return func(c *fiber.Ctx) error {
		select {
		case slots <- struct{}{}: // blocked senders are served in order
		case <-c.UserContext().Done():
			return fiber.NewError(fiber.StatusServiceUnavailable, "Rapport is busy; try again in a moment")
		}
		var once sync.Once
		release := func() { once.Do(func() { <-slots }) }
		defer release()
		c.SetUserContext(campaigns.WithWaitHook(c.UserContext(), release))
		return c.Next()
	}
}

// loginLimiter limits sign-in attempts per client address, counted in the
// database so every web process shares the count.
func (a *App) loginLimiter() fiber.Handler {
	return limiter.New(limiter.Config{
		Max:        a.deps.LoginAttempts,
		Expiration: a.deps.LoginWindow,
		Storage:    a.store.KV(),
		// Per address and account, counting failures only: an office
		// behind one address is not locked out by its own sign-ins.
		SkipSuccessfulRequests: true,
		KeyGenerator: func(c *fiber.Ctx) string {
			return "login:" + c.IP() + ":" + strings.ToLower(strings.TrimSpace(c.FormValue("email")))
		},
		LimitReached: func(c *fiber.Ctx) error {
			return campaigns.Errorf(campaigns.ERATELIMIT, "too many sign-in attempts; wait a few minutes and try again")
		},
	})
}

func csrfExtractor(c *fiber.Ctx) (string, error) {
	if t := c.Get("X-CSRF-Token"); t != "" {
		return t, nil
	}
	if t := c.FormValue("_csrf"); t != "" {
		return t, nil
	}
	return "", csrf.ErrTokenNotFound
}

// skipCSRF exempts requests that carry no ambient credentials: API calls
// with a bearer token, the signed SendGrid webhook, and the RFC 8058
// one-click unsubscribe POST (which mail providers send without a session).
func (a *App) skipCSRF(c *fiber.Ctx) bool {
	p := c.Path()
	switch {
	case len(p) >= 8 && p[:8] == "/api/v1/" && (bearer(c) != "" || principal(c) == nil):
		// Bearer calls carry no ambient credentials; calls with neither a
		// token nor a session are refused with 401 by require.
		return true
	case len(p) >= 10 && p[:10] == "/webhooks/":
		return true
	case len(p) >= 3 && (p[:3] == "/u/" || p[:3] == "/r/" || p[:3] == "/s/"):
		// The link's secret token is the credential; these pages have no
		// session to ride on.
		return true
	}
	return false
}

func (a *App) healthz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	if err := a.store.Ping(ctx); err != nil {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "error": "database does not answer"})
	}
	return c.JSON(fiber.Map{"status": "ok"})
}

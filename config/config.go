// Package config reads Rapport's configuration from the environment (and the
// few command-line flags that override it) into one Config value. Nothing
// else in Rapport reads the environment.
package config

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is everything a Rapport process needs to know about its surroundings.
type Config struct {
	Addr        string // listen address, from PORT (":3000") or --addr
	DatabaseURL string // postgres://… or sqlite:PATH
	BaseURL     string // public origin used in emails and links, no trailing slash
	// BaseURLDefaulted: BASE_URL was unset, so BaseURL is this machine's
	// http://localhost:PORT (fine for a laptop, wrong for production).
	BaseURLDefaulted bool
	AppSecret        string // signs QR check-in links and similar; generated for demos

	SendGridAPIKey           string // empty: local outbox
	SendGridBaseURL          string // API host, e.g. https://api.sendgrid.com
	SendGridWebhookPublicKey string
	MailFrom                 string
	MailPostalAddress        string

	SchedulerTick time.Duration

	// Sending (optional; the defaults suit SendGrid).
	SendBatchSize   int           // SEND_BATCH_SIZE: recipients per request, ≤ 1000
	SendConcurrency int           // SEND_CONCURRENCY: requests in flight per worker
	SendLease       time.Duration // SEND_LEASE: a claimed batch is a worker's for this long
	SendLateness    time.Duration // SEND_LATENESS: later than this, a campaign is missed
	SendTimeout     time.Duration // SEND_TIMEOUT: one request to the mail service
}

// Defaults used when a variable is unset.
const (
	DefaultPort            = "3000"
	DefaultDatabaseURL     = "sqlite:data/rapport.db"
	DefaultSendGridBaseURL = "https://api.sendgrid.com"
	DefaultSchedulerTick   = 5 * time.Second
	DefaultMailFrom        = "Rapport <events@example.com>"
)

// Load builds a Config from getenv (os.Getenv in production, a map in tests)
// and validates it. Every problem is reported, each naming its variable.
func Load(getenv func(string) string) (Config, error) {
	get := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	c := Config{
		Addr:                     ":" + get("PORT", DefaultPort),
		DatabaseURL:              get("DATABASE_URL", DefaultDatabaseURL),
		BaseURL:                  strings.TrimRight(get("BASE_URL", ""), "/"),
		AppSecret:                get("APP_SECRET", ""),
		SendGridAPIKey:           get("SENDGRID_API_KEY", ""),
		SendGridBaseURL:          strings.TrimRight(get("SENDGRID_BASE_URL", DefaultSendGridBaseURL), "/"),
		SendGridWebhookPublicKey: get("SENDGRID_WEBHOOK_PUBLIC_KEY", ""),
		MailFrom:                 get("MAIL_FROM", DefaultMailFrom),
		MailPostalAddress:        get("MAIL_POSTAL_ADDRESS", ""),
		SchedulerTick:            DefaultSchedulerTick,
		SendBatchSize:            1000,
		SendConcurrency:          2,
		SendLease:                2 * time.Minute,
		SendLateness:             24 * time.Hour,
		SendTimeout:              30 * time.Second,
	}
	if c.BaseURL == "" {
		c.BaseURL, c.BaseURLDefaulted = "http://localhost"+c.Addr, true
	}
	var errs []error
	if p := getenv("PORT"); strings.TrimSpace(p) != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(p)); err != nil || n < 1 || n > 65535 {
			errs = append(errs, fmt.Errorf("PORT: %q is not a port number (1-65535)", p))
		}
	}
	if t := strings.TrimSpace(getenv("SCHEDULER_TICK")); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d < 100*time.Millisecond {
			errs = append(errs, fmt.Errorf("SCHEDULER_TICK: %q is not a duration of at least 100ms (e.g. 5s)", t))
		} else {
			c.SchedulerTick = d
		}
	}
	durations := []struct {
		name string
		dst  *time.Duration
		min  time.Duration
	}{{"SEND_LEASE", &c.SendLease, time.Second}, {"SEND_LATENESS", &c.SendLateness, time.Minute}, {"SEND_TIMEOUT", &c.SendTimeout, 100 * time.Millisecond}}
	for _, d := range durations {
		if v := strings.TrimSpace(getenv(d.name)); v != "" {
			if x, err := time.ParseDuration(v); err != nil || x < d.min {
				errs = append(errs, fmt.Errorf("%s: %q is not a duration of at least %s", d.name, v, d.min))
			} else {
				*d.dst = x
			}
		}
	}
	ints := []struct {
		name     string
		dst      *int
		min, max int
	}{{"SEND_BATCH_SIZE", &c.SendBatchSize, 1, 1000}, {"SEND_CONCURRENCY", &c.SendConcurrency, 1, 64}}
	for _, n := range ints {
		if v := strings.TrimSpace(getenv(n.name)); v != "" {
			if x, err := strconv.Atoi(v); err != nil || x < n.min || x > n.max {
				errs = append(errs, fmt.Errorf("%s: %q must be a whole number %d-%d", n.name, v, n.min, n.max))
			} else {
				*n.dst = x
			}
		}
	}
	if c.SendLease < 2*c.SendTimeout {
		errs = append(errs, fmt.Errorf("SEND_LEASE (%s) must be at least twice SEND_TIMEOUT (%s): a lease must outlast a request", c.SendLease, c.SendTimeout))
	}
	if _, _, err := ParseDatabaseURL(c.DatabaseURL); err != nil {
		errs = append(errs, err)
	}
	if !c.BaseURLDefaulted {
		if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("BASE_URL: %q must be an absolute http(s) URL such as https://rapport.example.com", c.BaseURL))
		}
	}
	if u, err := url.Parse(c.SendGridBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("SENDGRID_BASE_URL: %q must be an absolute http(s) URL", c.SendGridBaseURL))
	}
	if _, err := mail.ParseAddress(c.MailFrom); err != nil {
		errs = append(errs, fmt.Errorf("MAIL_FROM: %q is not an email address (%v)", c.MailFrom, err))
	}
	if c.AppSecret != "" && len(c.AppSecret) < 16 {
		errs = append(errs, errors.New("APP_SECRET: must be at least 16 characters"))
	}
	return c, errors.Join(errs...)
}

// Dialect names the database behind a DATABASE_URL.
type Dialect string

const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// ParseDatabaseURL tells which database a URL names and returns what the
// driver needs: the URL itself for PostgreSQL, the file path for SQLite.
func ParseDatabaseURL(raw string) (Dialect, string, error) {
	switch {
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		if _, err := url.Parse(raw); err != nil {
			return "", "", fmt.Errorf("DATABASE_URL: not a valid postgres URL: %v", err)
		}
		return Postgres, raw, nil
	case strings.HasPrefix(raw, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(raw, "sqlite:"), "//")
		if path == "" {
			return "", "", errors.New("DATABASE_URL: sqlite: needs a file path, e.g. sqlite:data/rapport.db")
		}
		return SQLite, path, nil
	default:
		return "", "", fmt.Errorf("DATABASE_URL: %q must start with postgres:// or sqlite:", raw)
	}
}

// SetAddr changes the listen address (serve --addr), and the default
// BASE_URL with it.
func (c *Config) SetAddr(addr string) {
	c.Addr = addr
	if c.BaseURLDefaulted {
		host := addr
		if strings.HasPrefix(host, ":") {
			host = "localhost" + host
		}
		c.BaseURL = "http://" + host
	}
}

// SecureCookies reports whether cookies must carry the Secure flag.
func (c Config) SecureCookies() bool { return strings.HasPrefix(c.BaseURL, "https://") }

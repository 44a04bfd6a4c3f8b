package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(env(nil))
	require.NoError(t, err)
	require.Equal(t, ":3000", c.Addr)
	require.Equal(t, "sqlite:data/rapport.db", c.DatabaseURL)
	require.Equal(t, 5*time.Second, c.SchedulerTick)
	require.Equal(t, "https://api.sendgrid.com", c.SendGridBaseURL)
	require.False(t, c.SecureCookies())
	require.Equal(t, 1000, c.SendBatchSize)
	require.Equal(t, "http://localhost:3000", c.BaseURL)
	c.SetAddr(":4000")
	require.Equal(t, "http://localhost:4000", c.BaseURL)
}

func TestEachBadValueIsNamed(t *testing.T) {
	_, err := Load(env(map[string]string{
		"PORT": "http", "SCHEDULER_TICK": "often", "DATABASE_URL": "mysql://x", "BASE_URL": "rapport.example.com",
		"MAIL_FROM": "not an address", "APP_SECRET": "short", "SEND_BATCH_SIZE": "5000", "SEND_LEASE": "1ms",
	}))
	require.Error(t, err)
	for _, name := range []string{"PORT", "SCHEDULER_TICK", "DATABASE_URL", "BASE_URL", "MAIL_FROM", "APP_SECRET", "SEND_BATCH_SIZE", "SEND_LEASE"} {
		require.Contains(t, err.Error(), name)
	}
}

func TestValuesAreRead(t *testing.T) {
	c, err := Load(env(map[string]string{"PORT": "8080", "BASE_URL": "https://rapport.example.com/", "SCHEDULER_TICK": "250ms",
		"DATABASE_URL": "postgres://u@db/rapport", "SEND_LEASE": "5s", "SEND_TIMEOUT": "2s"}))
	require.NoError(t, err)
	require.Equal(t, ":8080", c.Addr)
	require.Equal(t, "https://rapport.example.com", c.BaseURL)
	require.True(t, c.SecureCookies())
	require.Equal(t, 250*time.Millisecond, c.SchedulerTick)
	require.Equal(t, 5*time.Second, c.SendLease)
}

func TestParseDatabaseURL(t *testing.T) {
	for raw, want := range map[string]struct {
		d    Dialect
		path string
	}{
		"sqlite:data/rapport.db":       {SQLite, "data/rapport.db"},
		"sqlite:///tmp/r.db":           {SQLite, "/tmp/r.db"},
		"postgres://u@h:5432/d":        {Postgres, "postgres://u@h:5432/d"},
		"postgresql://u@h/d?sslmode=x": {Postgres, "postgresql://u@h/d?sslmode=x"},
	} {
		d, p, err := ParseDatabaseURL(raw)
		require.NoError(t, err, raw)
		require.Equal(t, want.d, d, raw)
		require.Equal(t, want.path, p, raw)
	}
	for _, bad := range []string{"", "sqlite:", "mysql://x", "data/rapport.db"} {
		_, _, err := ParseDatabaseURL(bad)
		require.Error(t, err, bad)
		require.Contains(t, err.Error(), "DATABASE_URL")
	}
}

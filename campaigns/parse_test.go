package campaigns_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
)

func TestParseMoneyForms(t *testing.T) {
	good := map[string]int64{
		"1234.5": 123450, "$1,234.50": 123450, "1234": 123400, " $ 12 ": 1200, ".5": 50, "0.07": 7,
		"$1,234,567.89": 123456789, "0": 0, "$0.00": 0, "35,000.99": 3500099,
	}
	for in, want := range good {
		got, err := campaigns.ParseMoney(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "-1", "12.345", "1,23", "abc", "$", "1,2345.00", "12a", "1.2.3", "99999999999999999999", "$-5", ","} {
		_, err := campaigns.ParseMoney(in)
		require.Error(t, err, in)
	}
	require.Equal(t, "$1,234.50", campaigns.FormatMoney(123450))
	require.Equal(t, "$0.07", campaigns.FormatMoney(7))
	require.Equal(t, "-$10.00", campaigns.FormatMoney(-1000))
}

func FuzzParseMoney(f *testing.F) {
	for _, s := range []string{"1234.5", "$1,234.50", "1234", ".5", "-1", "1,2345", "$", "9999999999999999.99"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := campaigns.ParseMoney(s)
		if err != nil {
			return
		}
		if c < 0 {
			t.Fatalf("%q parsed to negative %d", s, c)
		}
		back, err := campaigns.ParseMoney(campaigns.FormatMoney(c))
		if err != nil || back != c {
			t.Fatalf("%q: %d formats as %q which parses to %d (%v)", s, c, campaigns.FormatMoney(c), back, err)
		}
	})
}

func TestParseLevelForms(t *testing.T) {
	good := map[string]campaigns.Level{"1": 1, "7": 7, " 6 ": 6, "Good customer": 6, "good_customer": 6, "GOOD-CUSTOMER": 6,
		"friend": 7, " prospect ": 3, "Record": 1, "acquaintance": 4}
	for in, want := range good {
		got, err := campaigns.ParseLevel(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"0", "8", "-1", "boss", "", "good"} {
		_, err := campaigns.ParseLevel(in)
		require.Error(t, err, in)
	}
	require.Equal(t, "Good customer", campaigns.Level(6).Name())
}

func FuzzParseLevel(f *testing.F) {
	for _, s := range []string{"1", "Good customer", "friend", "8", "", "good_customer"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := campaigns.ParseLevel(s)
		if err == nil && !l.Valid() {
			t.Fatalf("%q accepted as invalid level %d", s, l)
		}
	})
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{48 * time.Hour: "48h", 90 * time.Minute: "1h30m", 30 * time.Minute: "30m", 90 * time.Second: "1m30s", 2*time.Hour + 5*time.Second: "2h0m5s"} {
		require.Equal(t, want, campaigns.ShortDuration(d))
	}
}

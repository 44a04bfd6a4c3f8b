package campaigns

import (
	"strings"
	"testing"
)

// The fast path of tidy must agree with what it stands in for.
func TestTidyAgreesWithFields(t *testing.T) {
	for _, s := range []string{"", " ", "a", "a b", "a  b", " a", "a ", "a\tb", "a\nb", "José García", "a\u00a0b",
		"a\u2003b", "Ann  Lee ", "\r\nx", "O'Brien & Co, Inc.", "x\x00y", "a\vb\fc"} {
		want := strings.Join(strings.Fields(s), " ")
		if got := tidy(s); got != want {
			t.Errorf("tidy(%q) = %q, want %q", s, got, want)
		}
	}
}

func FuzzTidy(f *testing.F) {
	f.Add("a  b ")
	f.Fuzz(func(t *testing.T, s string) {
		if want := strings.Join(strings.Fields(s), " "); tidy(s) != want {
			t.Fatalf("tidy(%q) = %q, want %q", s, tidy(s), want)
		}
	})
}

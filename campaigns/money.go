package campaigns

import (
	"fmt"
	"math"
	"strings"
)

// ParseMoney reads an amount of dollars as a person or a spreadsheet writes it
// ("1234.5", "$1,234.50", "1234", " $ 12 ") into integer cents. It never goes
// through floating point, and refuses negative amounts, more than two decimals,
// misplaced thousands separators and amounts too large for int64 cents.
func ParseMoney(s string) (int64, error) {
	t := strings.TrimSpace(s)
	orig := t
	if t == "" {
		return 0, fmt.Errorf("amount is empty")
	}
	if strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("amount %q is negative", orig)
	}
	t = strings.TrimSpace(strings.TrimPrefix(t, "$"))
	whole, frac, hasDot := strings.Cut(t, ".")
	if whole == "" && (!hasDot || frac == "") {
		return 0, fmt.Errorf("amount %q has no digits", orig)
	}
	if strings.Contains(whole, ",") {
		// Thousands separators must be in groups of three: 1,234,567.
		groups := strings.Split(whole, ",")
		if len(groups[0]) == 0 || len(groups[0]) > 3 {
			return 0, fmt.Errorf("amount %q has misplaced thousands separators", orig)
		}
		for _, g := range groups[1:] {
			if len(g) != 3 {
				return 0, fmt.Errorf("amount %q has misplaced thousands separators", orig)
			}
		}
		whole = strings.Join(groups, "")
	}
	if hasDot && len(frac) > 2 {
		return 0, fmt.Errorf("amount %q has more than two decimals", orig)
	}
	var cents int64
	for _, r := range whole {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("amount %q is not a number like 1234.50 or $1,234.50", orig)
		}
		if cents > (math.MaxInt64/100-9)/10 {
			return 0, fmt.Errorf("amount %q is too large", orig)
		}
		cents = cents*10 + int64(r-'0')
	}
	cents *= 100
	for i, r := range frac {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("amount %q is not a number like 1234.50 or $1,234.50", orig)
		}
		if i == 0 {
			cents += int64(r-'0') * 10
		} else {
			cents += int64(r - '0')
		}
	}
	return cents, nil
}

// FormatMoney writes cents as dollars: 123456 → "$1,234.56".
func FormatMoney(cents int64) string {
	neg := cents < 0
	if neg {
		cents = -cents
	}
	whole := fmt.Sprintf("%d", cents/100)
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	sign := ""
	if neg {
		sign = "-"
	}
	return fmt.Sprintf("%s$%s.%02d", sign, b.String(), cents%100)
}

package campaigns

import (
	"fmt"
	"strconv"
	"strings"
)

// Level is a step on the 7-level relationship ladder.
type Level int

const (
	LevelRecord       Level = 1
	LevelContact      Level = 2
	LevelProspect     Level = 3
	LevelAcquaintance Level = 4
	LevelCustomer     Level = 5
	LevelGoodCustomer Level = 6
	LevelFriend       Level = 7
)

// LevelInfo describes a level for people.
type LevelInfo struct {
	Level   Level
	Name    string
	Meaning string
}

// Ladder lists the levels from the bottom.
var Ladder = []LevelInfo{
	{LevelRecord, "Record", "a record in the database: no communication, no relationship"},
	{LevelContact, "Contact", "communicated once or so (phone, email, social)"},
	{LevelProspect, "Prospect", "a contact that may become a customer"},
	{LevelAcquaintance, "Acquaintance", "communicated more than once; a good prospect"},
	{LevelCustomer, "Customer", "bought a single product; possibly met once or more"},
	{LevelGoodCustomer, "Good customer", "bought more than once; speak or meet occasionally"},
	{LevelFriend, "Friend", "great customer, sends referrals, likely to buy other products"},
}

// Valid reports whether l is on the ladder.
func (l Level) Valid() bool { return l >= LevelRecord && l <= LevelFriend }

// Name is the level's display name ("Good customer").
func (l Level) Name() string {
	if !l.Valid() {
		return fmt.Sprintf("Level %d", int(l))
	}
	return Ladder[l-1].Name
}

func (l Level) String() string { return l.Name() }

// ParseLevel accepts 1–7 or a level's name in any case, with spaces, dashes
// or underscores between words: "6", "Good customer", "good_customer", "FRIEND".
func ParseLevel(s string) (Level, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("level is empty; use 1-7 or a name such as Prospect")
	}
	if n, err := strconv.Atoi(t); err == nil {
		if l := Level(n); l.Valid() {
			return l, nil
		}
		return 0, fmt.Errorf("level %d is not between 1 and 7", n)
	}
	key := normalizeWords(t)
	for _, li := range Ladder {
		if normalizeWords(li.Name) == key {
			return li.Level, nil
		}
	}
	return 0, fmt.Errorf("level %q is neither 1-7 nor a level name (Record, Contact, Prospect, Acquaintance, Customer, Good customer, Friend)", t)
}

func normalizeWords(s string) string {
	f := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return r == ' ' || r == '_' || r == '-' || r == '\t'
	})
	return strings.Join(f, " ")
}

// UnmarshalJSON accepts a number or a level's name: 5 or "Customer".
func (l *Level) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := ParseLevel(s)
	if err != nil {
		return &Error{Code: EINVALID, Message: "a field is not valid", Fields: map[string]string{"level": err.Error()}}
	}
	*l = v
	return nil
}

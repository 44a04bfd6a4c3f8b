package campaigns

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Error codes. The HTTP layer maps each to one status in one place.
const (
	ENOTFOUND     = "not_found"
	ECONFLICT     = "conflict"
	EINVALID      = "invalid"      // a field is wrong: 422 with per-field messages
	EBADREQUEST   = "bad_request"  // the request itself is malformed: 400
	EUNAUTHORIZED = "unauthorized" // who you are is unknown: 401
	EFORBIDDEN    = "forbidden"    // you may not: 403
	ERATELIMIT    = "rate_limited"
	EINTERNAL     = "internal"
)

// Error is a domain error a user may see: a code, a sentence, and for
// validation errors the message for each bad field.
type Error struct {
	Code    string
	Message string
	Fields  map[string]string
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e.Fields[k]
	}
	return e.Message + " (" + strings.Join(parts, "; ") + ")"
}

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode is the code of err if it is (or wraps) an *Error, else EINTERNAL.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// Invalid collects per-field validation messages.
type Invalid map[string]string

// Add records why field is wrong; the first reason for a field wins.
func (v Invalid) Add(field, format string, args ...any) {
	if _, ok := v[field]; !ok {
		v[field] = fmt.Sprintf(format, args...)
	}
}

// Err is nil when nothing was added, else an EINVALID *Error.
func (v Invalid) Err() error {
	if len(v) == 0 {
		return nil
	}
	return &Error{Code: EINVALID, Message: "some fields are not valid", Fields: map[string]string(v)}
}

package app

import (
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/rapport/rapport/campaigns"
)

// statusOf maps domain error codes to HTTP statuses, in one place.
var statusOf = map[string]int{
	campaigns.ENOTFOUND:     fiber.StatusNotFound,
	campaigns.ECONFLICT:     fiber.StatusConflict,
	campaigns.EINVALID:      fiber.StatusUnprocessableEntity,
	campaigns.EBADREQUEST:   fiber.StatusBadRequest,
	campaigns.EUNAUTHORIZED: fiber.StatusUnauthorized,
	campaigns.EFORBIDDEN:    fiber.StatusForbidden,
	campaigns.ERATELIMIT:    fiber.StatusTooManyRequests,
	campaigns.EINTERNAL:     fiber.StatusInternalServerError,
}

var codeOfStatus = map[int]string{
	fiber.StatusBadRequest:            campaigns.EBADREQUEST,
	fiber.StatusUnauthorized:          campaigns.EUNAUTHORIZED,
	fiber.StatusForbidden:             campaigns.EFORBIDDEN,
	fiber.StatusNotFound:              campaigns.ENOTFOUND,
	fiber.StatusMethodNotAllowed:      "method_not_allowed",
	fiber.StatusConflict:              campaigns.ECONFLICT,
	fiber.StatusRequestEntityTooLarge: "too_large",
	fiber.StatusUnprocessableEntity:   campaigns.EINVALID,
	fiber.StatusTooManyRequests:       campaigns.ERATELIMIT,
	fiber.StatusServiceUnavailable:    "unavailable",
}

type apiError struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// errorHandler turns every error a handler returns into a response: JSON
// for the API, a page for browsers. Unexpected errors are logged here, once,
// and shown as a plain 500 without internals.
func (a *App) errorHandler(c *fiber.Ctx, err error) error {
	status := fiber.StatusInternalServerError
	body := apiError{Code: campaigns.EINTERNAL, Message: "something went wrong on our side; it has been logged"}
	var de *campaigns.Error
	var fe *fiber.Error
	switch {
	case errors.As(err, &de):
		status = statusOf[de.Code]
		if status == 0 {
			status = fiber.StatusInternalServerError
		}
		body = apiError{Code: de.Code, Message: de.Message, Fields: de.Fields}
	case errors.As(err, &fe):
		status = fe.Code
		body = apiError{Code: codeOfStatus[fe.Code], Message: fe.Message}
		if body.Code == "" {
			body.Code = strings.ToLower(strings.ReplaceAll(fiber.ErrBadRequest.Message, " ", "_"))
		}
	}
	if status >= 500 {
		a.log.Error("request failed", "method", c.Method(), "path", loggablePath(c), "err", err)
	}
	if c.Request().Header.ContentLength() != 0 {
		// A refused request's body may not have been read: with streamed
		// bodies its bytes would otherwise be parsed as the next request
		// on this connection (request smuggling). Close it instead.
		c.Context().SetConnectionClose()
	}
	if wantsJSON(c) {
		return c.Status(status).JSON(fiber.Map{"error": body})
	}
	c.Status(status)
	return a.render(c, "pages/error", fiber.Map{"Title": errorTitle(status), "Status": status, "Error": body})
}

func errorTitle(status int) string {
	switch status {
	case 404:
		return "Page not found"
	case 403:
		return "Not allowed"
	case 401:
		return "Please sign in"
	case 429:
		return "Too many attempts"
	case 413:
		return "File too large"
	}
	if status >= 500 {
		return "Something went wrong"
	}
	return "That did not work"
}

func wantsJSON(c *fiber.Ctx) bool {
	return strings.HasPrefix(c.Path(), "/api/") || strings.HasPrefix(c.Path(), "/webhooks/") ||
		c.Path() == "/healthz" || strings.HasSuffix(c.Path(), ".json")
}

// decodeJSON reads a JSON body into v. Malformed JSON is a 400; a value of
// the wrong type is a 422 naming the field.
func decodeJSON(c *fiber.Ctx, v any) error {
	body := c.Body()
	if len(strings.TrimSpace(string(body))) == 0 {
		return campaigns.Errorf(campaigns.EBADREQUEST, "the request body is empty; send JSON")
	}
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		// Embedded Go structs show up as "Filter.min_spend_cents": JSON
		// names are lower-case, Go type names are not.
		for {
			head, rest, ok := strings.Cut(field, ".")
			if !ok || head == "" || head[0] < 'A' || head[0] > 'Z' {
				break
			}
			field = rest
		}
		if field == "" {
			field = "body"
		}
		return &campaigns.Error{Code: campaigns.EINVALID, Message: "a field has the wrong type",
			Fields: map[string]string{field: "must be " + jsonKind(te.Type.Kind().String())}}
	}
	var de *campaigns.Error // a field's own UnmarshalJSON (a level name) names itself
	if errors.As(err, &de) {
		return de
	}
	slog.Debug("bad json", "err", err)
	return campaigns.Errorf(campaigns.EBADREQUEST, "the body is not valid JSON: %v", err)
}

func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"), strings.HasPrefix(k, "float"):
		return "a number"
	case k == "string":
		return "a string"
	case k == "bool":
		return "true or false"
	case k == "slice":
		return "a list"
	case k == "struct", k == "map":
		return "an object"
	}
	return "of another type"
}

// loggablePath is the request's path, or its route's pattern when the path
// carries a public link's token: a token in the logs would open the link.
func loggablePath(c *fiber.Ctx) string {
	if slices.Contains(c.Route().Params, "token") {
		return c.Route().Path
	}
	return c.Path()
}

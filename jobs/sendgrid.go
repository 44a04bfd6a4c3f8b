package jobs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sendgrid/rest"
	"github.com/sendgrid/sendgrid-go"
	sgmail "github.com/sendgrid/sendgrid-go/helpers/mail"
)

// SendGridConfig configures the SendGrid adapter.
type SendGridConfig struct {
	APIKey       string
	BaseURL      string        // API host; tests point it at a fake
	HTTPTimeout  time.Duration // one request (default 30s)
	Lead         time.Duration // batches are scheduled this far ahead (default 15m)
	CancelWindow time.Duration // SendGrid recalls a batch until this long before (10m)
}

// SendGrid sends through SendGrid's v3 API with the official client. Each
// batch is scheduled Lead ahead under a batch id, so a batch whose fate is
// unknown can be recalled (scheduled-sends cancel) and sent again.
type SendGrid struct {
	cfg    SendGridConfig
	client *rest.Client
}

// NewSendGrid builds the adapter.
func NewSendGrid(cfg SendGridConfig) *SendGrid {
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://api.sendgrid.com"
	}
	if cfg.HTTPTimeout <= 0 {
		cfg.HTTPTimeout = 30 * time.Second
	}
	if cfg.Lead <= 0 {
		cfg.Lead = 15 * time.Minute
	}
	if cfg.CancelWindow <= 0 {
		cfg.CancelWindow = 10 * time.Minute
	}
	return &SendGrid{cfg: cfg, client: &rest.Client{HTTPClient: &http.Client{Timeout: cfg.HTTPTimeout}}}
}

func (s *SendGrid) Name() string                { return "sendgrid" }
func (s *SendGrid) Lead() time.Duration         { return s.cfg.Lead }
func (s *SendGrid) CancelWindow() time.Duration { return s.cfg.CancelWindow }

// call makes one request. sendgrid-go answers a non-2xx status with a nil
// error, so the status is always checked by the caller. A request is built
// per call: the client's request values are not safe to share.
func (s *SendGrid) call(ctx context.Context, method rest.Method, endpoint string, body []byte) (*rest.Response, error) {
	req := sendgrid.GetRequest(s.cfg.APIKey, endpoint, strings.TrimRight(s.cfg.BaseURL, "/"))
	req.Method = method
	req.Body = body
	resp, err := s.client.SendWithContext(ctx, req)
	if err != nil {
		return nil, &UncertainError{Err: err}
	}
	return resp, nil
}

// NewBatchID reserves a batch id (POST /v3/mail/batch).
func (s *SendGrid) NewBatchID(ctx context.Context) (string, error) {
	resp, err := s.call(ctx, rest.Post, "/v3/mail/batch", nil)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return "", classify(resp)
	}
	var out struct {
		BatchID string `json:"batch_id"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &out); err != nil || out.BatchID == "" {
		return "", &UncertainError{Err: fmt.Errorf("no batch_id in %q", truncate(resp.Body, 200))}
	}
	return out.BatchID, nil
}

// Send hands one batch to SendGrid: one personalization per recipient
// with their substitutions, headers and invitation_id.
func (s *SendGrid) Send(ctx context.Context, b *Batch) (string, error) {
	if len(b.Recipients) == 0 || len(b.Recipients) > MaxRecipients {
		return "", &RejectedError{Status: 0, Message: fmt.Sprintf("a batch needs 1-%d recipients, has %d", MaxRecipients, len(b.Recipients))}
	}
	m := sgmail.NewV3Mail()
	m.SetFrom(sgmail.NewEmail(b.From.Name, b.From.Address))
	m.Subject = b.Subject
	m.AddContent(sgmail.NewContent("text/plain", b.Text), sgmail.NewContent("text/html", b.HTML))
	if len(b.Categories) > 0 {
		m.AddCategories(b.Categories...)
	}
	if b.ID != "" {
		m.SetBatchID(b.ID)
	}
	if time.Until(b.SendAt) > 5*time.Second {
		m.SetSendAt(int(b.SendAt.Unix()))
	}
	for _, a := range b.Attachments {
		at := sgmail.NewAttachment()
		at.SetContent(base64.StdEncoding.EncodeToString(a.Content))
		at.SetType(a.Type)
		at.SetFilename(a.Filename)
		at.SetDisposition("attachment")
		m.AddAttachment(at)
	}
	for _, r := range b.Recipients {
		p := sgmail.NewPersonalization()
		p.AddTos(sgmail.NewEmail(r.Name, r.Email))
		for k, v := range r.Substitutions {
			p.SetSubstitution(k, v)
		}
		for k, v := range r.Headers {
			p.SetHeader(k, v)
		}
		p.SetCustomArg("invitation_id", strconv.FormatInt(r.InvitationID, 10))
		m.AddPersonalizations(p)
	}
	resp, err := s.call(ctx, rest.Post, "/v3/mail/send", sgmail.GetRequestBody(m))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return "", classify(resp)
	}
	return header(resp, "X-Message-Id"), nil
}

// Cancel recalls a batch (POST /v3/user/scheduled_sends, status cancel).
func (s *SendGrid) Cancel(ctx context.Context, batchID string) error {
	body, _ := json.Marshal(map[string]string{"batch_id": batchID, "status": "cancel"})
	resp, err := s.call(ctx, rest.Post, "/v3/user/scheduled_sends", body)
	if err != nil {
		return err
	}
	switch {
	case resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusBadRequest && strings.Contains(strings.ToLower(resp.Body), "already"):
		return nil // cancelled before: the same outcome
	}
	return classify(resp)
}

var personalizationField = regexp.MustCompile(`^personalizations\.(\d+)`)

// classify turns a non-2xx answer into one of the Mailer errors.
func classify(resp *rest.Response) error {
	var body struct {
		Errors []struct {
			Message string  `json:"message"`
			Field   *string `json:"field"`
		} `json:"errors"`
	}
	_ = json.Unmarshal([]byte(resp.Body), &body)
	var msgs []string
	recipients := map[int]string{}
	for _, e := range body.Errors {
		msgs = append(msgs, e.Message)
		if e.Field != nil {
			if m := personalizationField.FindStringSubmatch(*e.Field); m != nil {
				i, _ := strconv.Atoi(m[1])
				recipients[i] = e.Message
			}
		}
	}
	msg := strings.Join(msgs, "; ")
	if msg == "" {
		msg = truncate(resp.Body, 200)
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return &RateLimitedError{RetryAfter: retryAfter(resp)}
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return &ConfigError{Status: resp.StatusCode, Message: msg}
	case resp.StatusCode >= 500:
		return &UncertainError{Err: fmt.Errorf("SendGrid answered %d: %s", resp.StatusCode, msg)}
	case resp.StatusCode >= 400:
		return &RejectedError{Status: resp.StatusCode, Message: msg, Recipients: recipients}
	}
	return &UncertainError{Err: errors.New("unexpected answer " + strconv.Itoa(resp.StatusCode))}
}

// retryAfter reads Retry-After (seconds) or X-RateLimit-Reset (a unix
// time): at least a second, at most five minutes.
func retryAfter(resp *rest.Response) time.Duration {
	d := time.Second
	if v, err := strconv.Atoi(strings.TrimSpace(header(resp, "Retry-After"))); err == nil && v > 0 {
		d = time.Duration(v) * time.Second
	} else if v, err := strconv.ParseInt(strings.TrimSpace(header(resp, "X-RateLimit-Reset")), 10, 64); err == nil {
		if until := time.Until(time.Unix(v, 0)); until > 0 {
			d = until
		}
	}
	return min(max(d, time.Second), 5*time.Minute)
}

func header(resp *rest.Response, name string) string {
	for k, v := range resp.Headers {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

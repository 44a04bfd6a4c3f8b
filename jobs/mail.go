package jobs

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"time"
)

// Mailer hands batches of email to a mail service. Two adapters implement
// it: SendGrid (jobs/sendgrid.go) and the local outbox (jobs/outbox.go).
//
// Exactly-once sending rests on two promises of an adapter: a batch is
// handed over Lead before its send time and can be recalled with Cancel
// until CancelWindow before that time; and after Cancel(id) returns nil,
// nothing sent with that batch id ever reaches a recipient. A worker that
// dies mid-send leaves its batch leased; whoever finds the lease expired
// cancels the batch and sends its invitations again (see dispatcher.go).
type Mailer interface {
	Name() string
	Lead() time.Duration
	CancelWindow() time.Duration
	// NewBatchID reserves an id that ties the sends of one batch together.
	NewBatchID(ctx context.Context) (string, error)
	// Send hands over one batch (at most MaxRecipients recipients). It
	// returns the service's message id, or one of the errors below.
	Send(ctx context.Context, b *Batch) (string, error)
	// Cancel recalls every send made with batchID.
	Cancel(ctx context.Context, batchID string) error
}

// MaxRecipients is the most personalizations SendGrid takes in a request.
const MaxRecipients = 1000

// Batch is one email to many recipients: one shared content with
// substitution tags (e.g. -rsvp_url-) filled per recipient, so no
// recipient sees another and each gets their own links.
type Batch struct {
	ID          string
	CampaignID  int64
	Kind        string    // invitation, gift, reminder, survey
	SendAt      time.Time // when it should arrive; zero or past means now
	From        mail.Address
	Subject     string
	Text        string
	HTML        string
	Categories  []string
	Attachments []Attachment
	Recipients  []Recipient
}

// Recipient is one personalization of a batch.
type Recipient struct {
	InvitationID  int64
	Email         string
	Name          string
	Substitutions map[string]string // tag → value, in text and HTML alike
	Headers       map[string]string // e.g. List-Unsubscribe, per recipient
}

// Attachment is a file sent with every recipient's copy.
type Attachment struct {
	Filename string
	Type     string // MIME type, e.g. text/calendar; method=PUBLISH
	Content  []byte
}

// RateLimitedError: the service refused the request for now (429). Nothing
// was sent; try again after RetryAfter.
type RateLimitedError struct{ RetryAfter time.Duration }

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("rate limited by the mail service; retry after %s", e.RetryAfter)
}

// RejectedError: the service refused the request as a whole (4xx) and sent
// nothing. Recipients maps recipient indexes to the reason the service gave
// for them; those are marked failed, the others are sent again. When it
// names none, nobody is failed: the campaign pauses with the reason and
// the batch's recipients wait to be sent once it is resumed.
type RejectedError struct {
	Status     int
	Message    string
	Recipients map[int]string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("the mail service refused the request (%d): %s", e.Status, e.Message)
}

// UncertainError: the outcome is unknown (5xx, timeout, connection reset):
// the service may have taken the batch. The batch must be cancelled before
// its invitations are sent again.
type UncertainError struct{ Err error }

func (e *UncertainError) Error() string { return "mail service outcome unknown: " + e.Err.Error() }
func (e *UncertainError) Unwrap() error { return e.Err }

// ConfigError: the service refuses us (401/403: a bad key or a sender not
// verified). Sending pauses until someone fixes the configuration.
type ConfigError struct {
	Status  int
	Message string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("the mail service refused our credentials (%d): %s", e.Status, e.Message)
}

// IsRetryable reports whether err leaves the batch's invitations to be
// sent again (after a cancel, for uncertain outcomes).
func IsRetryable(err error) bool {
	var rl *RateLimitedError
	var un *UncertainError
	return errors.As(err, &rl) || errors.As(err, &un)
}

package jobs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/rapport/rapport/campaigns"
)

// Outbox is the Mailer used when no SendGrid key is set: every email is
// rendered for its recipient and kept in the database, readable at /outbox,
// so the whole flow works on a laptop. It keeps the same batch discipline
// as SendGrid: a recalled batch's emails are removed, and a send with its
// id afterwards is not kept.
type Outbox struct {
	store *campaigns.Store
}

// NewOutbox keeps emails in store.
func NewOutbox(store *campaigns.Store) *Outbox { return &Outbox{store: store} }

func (o *Outbox) Name() string { return "outbox" }

// DeliversOnSend: a kept email is delivered; there is no webhook to wait for.
func (o *Outbox) DeliversOnSend() {}

// Lead is zero: the outbox needs no time to recall a batch.
func (o *Outbox) Lead() time.Duration { return 0 }

// CancelWindow is negative: an outbox batch can always be recalled.
func (o *Outbox) CancelWindow() time.Duration { return -1 }

func (o *Outbox) NewBatchID(context.Context) (string, error) {
	return "outbox-" + campaigns.NewSecret(), nil
}

type outboxAttachment struct {
	Filename string `json:"filename"`
	Type     string `json:"type"`
	Content  string `json:"content"` // base64
}

func (o *Outbox) Send(ctx context.Context, b *Batch) (string, error) {
	atts := make([]outboxAttachment, len(b.Attachments))
	for i, a := range b.Attachments {
		atts[i] = outboxAttachment{Filename: a.Filename, Type: a.Type, Content: base64.StdEncoding.EncodeToString(a.Content)}
	}
	aj, _ := json.Marshal(atts)
	now := time.Now().UTC()
	msgs := make([]campaigns.OutboxMessage, len(b.Recipients))
	for i, r := range b.Recipients {
		hj, _ := json.Marshal(r.Headers)
		invID, campID := r.InvitationID, b.CampaignID
		msgs[i] = campaigns.OutboxMessage{CampaignID: &campID, InvitationID: &invID, Kind: b.Kind, BatchID: b.ID,
			ToEmail: r.Email, ToName: r.Name, FromEmail: b.From.String(),
			Subject: Personalize(b.Subject, r.Substitutions), TextBody: Personalize(b.Text, r.Substitutions),
			HTMLBody: Personalize(b.HTML, r.Substitutions), Headers: string(hj), Attachments: string(aj), CreatedAt: now}
	}
	// A batch cancelled before this send keeps nothing, and the send is
	// answered as accepted, as SendGrid answers a send with a cancelled
	// batch id: nothing of a recalled batch ever reaches anyone.
	if _, err := o.store.StoreOutbox(ctx, b.ID, msgs); err != nil {
		return "", &UncertainError{Err: err}
	}
	return b.ID, nil
}

// Cancel removes the batch's kept emails and refuses any later send of it.
func (o *Outbox) Cancel(ctx context.Context, batchID string) error {
	return o.store.CancelOutboxBatch(ctx, batchID)
}

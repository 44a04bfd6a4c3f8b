package jobs

import (
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sendgrid/sendgrid-go/helpers/eventwebhook"

	"github.com/rapport/rapport/campaigns"
)

// WebhookVerifier checks the ECDSA signature SendGrid puts on its event
// webhook (Settings → Mail Settings → Signed Event Webhook).
type WebhookVerifier struct {
	key *ecdsa.PublicKey
}

// NewWebhookVerifier reads SENDGRID_WEBHOOK_PUBLIC_KEY (base64).
func NewWebhookVerifier(pubKeyBase64 string) (*WebhookVerifier, error) {
	k, err := eventwebhook.ConvertPublicKeyBase64ToECDSA(strings.TrimSpace(pubKeyBase64))
	if err != nil {
		return nil, fmt.Errorf("SENDGRID_WEBHOOK_PUBLIC_KEY: not a base64 ECDSA public key: %v", err)
	}
	return &WebhookVerifier{key: k}, nil
}

// maxSkew is how far a webhook's timestamp may be from now: a replayed
// old request is refused.
const maxSkew = 5 * time.Minute

// Verify refuses a missing or bad signature, and a timestamp more than
// five minutes from now.
func (v *WebhookVerifier) Verify(payload []byte, signature, timestamp string, now time.Time) error {
	if signature == "" || timestamp == "" {
		return errors.New("missing signature or timestamp header")
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("the timestamp is not a unix time")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > maxSkew || d < -maxSkew {
		return fmt.Errorf("the timestamp is %s away from now", d.Round(time.Second))
	}
	ok, err := eventwebhook.VerifySignature(v.key, payload, signature, timestamp)
	if err != nil || !ok {
		return errors.New("the signature does not match")
	}
	return nil
}

// ParseEvents reads SendGrid's event batch. Custom args arrive flattened
// into each event (invitation_id, as a string or a number). Events without
// an sg_event_id cannot be deduplicated and are skipped.
func ParseEvents(payload []byte) ([]campaigns.EmailEvent, error) {
	var raw []map[string]any
	if err := json.Unmarshal(payload, &raw); err != nil {
		return nil, fmt.Errorf("the body is not a JSON array of events: %v", err)
	}
	out := make([]campaigns.EmailEvent, 0, len(raw))
	for _, r := range raw {
		id, _ := r["sg_event_id"].(string)
		ev, _ := r["event"].(string)
		if id == "" || ev == "" {
			continue
		}
		e := campaigns.EmailEvent{SGEventID: id, Event: ev, OccurredAt: time.Now().UTC()}
		if s, ok := r["email"].(string); ok {
			e.Email = strings.ToLower(strings.TrimSpace(s))
		}
		switch ts := r["timestamp"].(type) {
		case float64:
			e.OccurredAt = time.Unix(int64(ts), 0).UTC()
		}
		for _, k := range []string{"reason", "response", "type"} {
			if s, ok := r[k].(string); ok && s != "" {
				e.Reason = s
				break
			}
		}
		switch v := r["invitation_id"].(type) {
		case string:
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				e.InvitationID = &n
			}
		case float64:
			n := int64(v)
			e.InvitationID = &n
		}
		out = append(out, e)
	}
	return out, nil
}

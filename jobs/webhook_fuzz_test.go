package jobs_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
	"github.com/rapport/rapport/jobs"
	"github.com/rapport/rapport/jobs/sendgridfake"
)

// FuzzWebhookBody feeds arbitrary bodies to the SendGrid event webhook's
// parser and the store. Nothing panics; every event kept can be
// deduplicated; applying a batch a second time changes nothing; and the
// signature holds for the body signed and for no other.
func FuzzWebhookBody(f *testing.F) {
	f.Add([]byte(`[{"email":"ann@example.com","timestamp":1700000000,"event":"delivered","sg_event_id":"ev-1","sg_message_id":"m1","invitation_id":"1"}]`))
	f.Add([]byte(`[{"email":"BOB@example.com","timestamp":1700000001,"event":"bounce","type":"bounce","reason":"550 no such user","sg_event_id":"ev-2","invitation_id":2}]`))
	f.Add([]byte(`[{"event":"spamreport","sg_event_id":"ev-3","email":"c@example.com"},{"event":"unsubscribe","sg_event_id":"ev-4"}]`))
	f.Add([]byte(`[{"event":"delivered"}]`))
	f.Add([]byte(`{"not":"an array"}`))
	f.Add([]byte(`[{"event":"delivered","sg_event_id":"x","invitation_id":"99999999999999999999","timestamp":1e300}]`))
	key, pub := sendgridfake.NewWebhookKey()
	v, err := jobs.NewWebhookVerifier(pub)
	if err != nil {
		f.Fatal(err)
	}
	s := campaignstest.Open(f, campaignstest.SQLite)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body []byte) {
		now := time.Now()
		sig, ts := sendgridfake.SignWebhook(key, body, now)
		if err := v.Verify(body, sig, ts, now); err != nil {
			t.Fatalf("a correctly signed body is refused: %v", err)
		}
		if err := v.Verify(append(bytes.Clone(body), ' '), sig, ts, now); err == nil {
			t.Fatal("a changed body passed the signature check")
		}
		evs, err := jobs.ParseEvents(body)
		if err != nil {
			return
		}
		for _, e := range evs {
			if e.SGEventID == "" || e.Event == "" {
				t.Fatalf("an event without an id or a kind was kept: %+v", e)
			}
		}
		if _, err := s.ApplyEmailEvents(ctx, evs); err != nil && campaigns.ErrorCode(err) == campaigns.EINTERNAL {
			t.Fatalf("applying the events failed: %v", err)
		}
		again, err := s.ApplyEmailEvents(ctx, evs)
		if err == nil && again != 0 {
			t.Fatalf("the same batch applied %d events a second time", again)
		}
	})
}

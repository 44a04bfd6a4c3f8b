package jobs_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/jobs"
	"github.com/rapport/rapport/jobs/sendgridfake"
)

func testBatch(n int) *jobs.Batch {
	b := &jobs.Batch{From: mail.Address{Name: "Rapport", Address: "events@example.com"}, Subject: "You're invited",
		Text: "Hi -first_name-, reply at -rsvp_url-", HTML: "<p>Hi -first_name_html-, <a href=\"-rsvp_url-\">reply</a></p>",
		Categories: []string{"rapport", "invitation"}, SendAt: time.Now().Add(15 * time.Minute),
		Attachments: []jobs.Attachment{{Filename: "invitation.ics", Type: "text/calendar", Content: []byte("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")}}}
	for i := 0; i < n; i++ {
		b.Recipients = append(b.Recipients, jobs.Recipient{InvitationID: int64(100 + i), Email: fmt.Sprintf("guest%d@example.com", i),
			Name: fmt.Sprintf("Guest %d", i), Substitutions: map[string]string{"-first_name-": "Guest", "-rsvp_url-": fmt.Sprintf("https://r.example/r/t%d", i)},
			Headers: map[string]string{"List-Unsubscribe": fmt.Sprintf("<https://r.example/u/u%d>", i), "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}})
	}
	return b
}

func newSG(url string) *jobs.SendGrid {
	return jobs.NewSendGrid(jobs.SendGridConfig{APIKey: "SG.test", BaseURL: url, HTTPTimeout: 500 * time.Millisecond})
}

func TestSendGridSendsOnePersonalizationPerRecipient(t *testing.T) {
	fake := sendgridfake.New()
	defer fake.Close()
	sg := newSG(fake.URL)
	ctx := context.Background()
	b := testBatch(3)
	id, err := sg.NewBatchID(ctx)
	require.NoError(t, err)
	b.ID = id
	msgID, err := sg.Send(ctx, b)
	require.NoError(t, err)
	require.NotEmpty(t, msgID)
	ds := fake.Delivered()
	require.Len(t, ds, 3)
	for i, d := range ds {
		require.Equal(t, fmt.Sprintf("guest%d@example.com", i), d.Email)
		require.Equal(t, fmt.Sprint(100+i), d.InvitationID)
		require.Equal(t, fmt.Sprintf("https://r.example/r/t%d", i), d.Substitutions["-rsvp_url-"])
		require.Equal(t, "List-Unsubscribe=One-Click", d.Headers["List-Unsubscribe-Post"])
		require.Equal(t, id, d.BatchID)
		require.NotZero(t, d.SendAt)
		require.Contains(t, d.Content, "text/plain")
		require.Contains(t, d.Content, "text/html")
		require.Len(t, d.Attachments, 1)
		raw, err := base64.StdEncoding.DecodeString(d.Attachments[0].Content)
		require.NoError(t, err)
		require.Contains(t, string(raw), "BEGIN:VCALENDAR")
	}

	// A recalled batch never goes out, even when sent after the recall.
	id2, err := sg.NewBatchID(ctx)
	require.NoError(t, err)
	require.NoError(t, sg.Cancel(ctx, id2))
	b.ID = id2
	_, err = sg.Send(ctx, b)
	require.NoError(t, err)
	require.Len(t, fake.Delivered(), 3)
	require.True(t, fake.Cancelled(id2))

	_, err = sg.Send(ctx, testBatch(1001))
	var rej *jobs.RejectedError
	require.True(t, errors.As(err, &rej), "more than 1000 recipients is refused before any request")
	_, err = sg.Send(ctx, testBatch(1000))
	require.NoError(t, err)
}

func TestSendGridFailuresAreClassified(t *testing.T) {
	ctx := context.Background()
	fake := sendgridfake.New()
	defer fake.Close()
	sg := newSG(fake.URL)

	fake.FailNext(1, http.StatusTooManyRequests)
	fake.SetRateLimit(0, 7*time.Second)
	_, err := sg.Send(ctx, testBatch(2))
	var rl *jobs.RateLimitedError
	require.True(t, errors.As(err, &rl), "%v", err)
	require.Equal(t, 7*time.Second, rl.RetryAfter)

	fake.FailNext(1, http.StatusInternalServerError)
	_, err = sg.Send(ctx, testBatch(2))
	var un *jobs.UncertainError
	require.True(t, errors.As(err, &un), "a 5xx leaves the outcome unknown: %v", err)

	fake.AcceptThenFail(1)
	_, err = sg.Send(ctx, testBatch(2))
	require.True(t, errors.As(err, &un))

	bad := testBatch(3)
	bad.Recipients[1].Email = "not an address"
	_, err = sg.Send(ctx, bad)
	var rej *jobs.RejectedError
	require.True(t, errors.As(err, &rej), "%v", err)
	require.Equal(t, 400, rej.Status)
	require.Contains(t, rej.Recipients, 1, "the bad recipient is named")
	require.NotContains(t, rej.Recipients, 0)

	unauth := jobs.NewSendGrid(jobs.SendGridConfig{APIKey: "", BaseURL: fake.URL})
	_, err = unauth.Send(ctx, testBatch(1))
	var ce *jobs.ConfigError
	require.True(t, errors.As(err, &ce), "%v", err)

	fake.Hang(true)
	_, err = sg.Send(ctx, testBatch(1))
	require.True(t, errors.As(err, &un), "a timeout leaves the outcome unknown: %v", err)
	fake.Hang(false)

	fake.SetResets(1)
	_, err = sg.Send(ctx, testBatch(1))
	require.True(t, errors.As(err, &un), "a reset connection leaves the outcome unknown: %v", err)
	fake.SetResets(0)
}

func TestSendGridRetryAfterFromRateLimitReset(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-RateLimit-Reset", fmt.Sprint(time.Now().Add(20*time.Second).Unix()))
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"errors":[{"message":"too many requests"}]}`))
	}))
	defer srv.Close()
	_, err := newSG(srv.URL).Send(context.Background(), testBatch(1))
	var rl *jobs.RateLimitedError
	require.True(t, errors.As(err, &rl))
	require.InDelta(t, 20, rl.RetryAfter.Seconds(), 2)
}

func TestWebhookVerification(t *testing.T) {
	key, pub := sendgridfake.NewWebhookKey()
	v, err := jobs.NewWebhookVerifier(pub)
	require.NoError(t, err)
	payload := []byte(`[{"sg_event_id":"a1","event":"delivered","email":"Guest@Example.com","timestamp":1700000000,"invitation_id":"12"},` +
		`{"sg_event_id":"a2","event":"bounce","email":"x@example.com","reason":"550 no such user","invitation_id":13},` +
		`{"event":"open","email":"nokey@example.com"}]`)
	now := time.Now()
	sig, ts := sendgridfake.SignWebhook(key, payload, now)
	require.NoError(t, v.Verify(payload, sig, ts, now))
	require.Error(t, v.Verify(append([]byte(" "), payload...), sig, ts, now), "tampered")
	require.Error(t, v.Verify(payload, "", ts, now), "missing signature")
	require.Error(t, v.Verify(payload, sig, ts, now.Add(6*time.Minute)), "too old")
	other, _ := sendgridfake.NewWebhookKey()
	sig2, ts2 := sendgridfake.SignWebhook(other, payload, now)
	require.Error(t, v.Verify(payload, sig2, ts2, now), "another key")
	_, err = jobs.NewWebhookVerifier("not a key")
	require.ErrorContains(t, err, "SENDGRID_WEBHOOK_PUBLIC_KEY")

	evs, err := jobs.ParseEvents(payload)
	require.NoError(t, err)
	require.Len(t, evs, 2, "events without sg_event_id are skipped")
	require.Equal(t, "guest@example.com", evs[0].Email)
	require.EqualValues(t, 12, *evs[0].InvitationID)
	require.EqualValues(t, 13, *evs[1].InvitationID)
	require.Equal(t, "550 no such user", evs[1].Reason)
	require.Equal(t, int64(1700000000), evs[0].OccurredAt.Unix())
	_, err = jobs.ParseEvents([]byte("{not json"))
	require.Error(t, err)
}

package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/app"
	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/jobs"
	"github.com/rapport/rapport/jobs/sendgridfake"
)

func TestCampaignAPIContract(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		e := setup(t, dialect)
		tok := e.tokens[campaigns.RoleCoordinator]
		body := map[string]any{"kind": "event", "name": "Art museum evening", "time_zone": "America/Chicago",
			"filter": map[string]any{"min_spend_cents": 30000, "metros": []string{"Chicago", "Evanston"}}, "holdout_percent": 10,
			"attribution_days": 90, "event": map[string]any{"venue": "Art Institute", "address": "111 S Michigan Ave, Chicago",
				"starts_at": "2027-12-10T18:00:00-06:00", "ends_at": "2027-12-10T21:00:00-06:00", "capacity": 40,
				"guests_per_invite": 1, "rsvp_deadline": "2027-12-08T23:59:00-06:00"}}
		r := e.api("POST", "/api/v1/campaigns", tok, body)
		require.Equal(t, http.StatusCreated, r.Status, r.Body)
		var c struct {
			ID     int64             `json:"id"`
			Kind   string            `json:"kind"`
			Status string            `json:"status"`
			Funnel map[string]int64  `json:"funnel"`
			Event  map[string]any    `json:"event"`
			Filter map[string]any    `json:"filter"`
			Extra  map[string]string `json:"-"`
		}
		r.Decode(t, &c)
		require.Equal(t, "draft", c.Status)
		for _, k := range []string{"audience", "holdout", "sent", "delivered", "failed", "rsvp_yes", "rsvp_no", "waitlisted", "attended", "no_show", "promoted"} {
			require.Contains(t, c.Funnel, k)
		}
		require.Equal(t, "2027-12-11T00:00:00Z", c.Event["starts_at"])

		bad := map[string]any{"kind": "event", "name": "", "time_zone": "Mars/Base",
			"event": map[string]any{"venue": "", "starts_at": "2027-12-10T18:00:00Z", "ends_at": "2027-12-10T17:00:00Z", "capacity": 0}}
		r = e.api("POST", "/api/v1/campaigns", tok, bad)
		require.Equal(t, http.StatusUnprocessableEntity, r.Status)
		fields := r.Err(t).Error.Fields
		for _, f := range []string{"name", "time_zone", "event.venue", "event.ends_at", "event.capacity"} {
			require.Contains(t, fields, f)
		}

		r = e.api("POST", fmt.Sprintf("/api/v1/campaigns/%d/close", c.ID), tok, map[string]any{})
		require.Equal(t, http.StatusConflict, r.Status, "a draft cannot be closed")
		r = e.api("POST", fmt.Sprintf("/api/v1/campaigns/%d/schedule", c.ID), tok, map[string]any{"send_at": "2027-12-01T09:00:00-06:00"})
		require.Equal(t, http.StatusOK, r.Status, r.Body)
		require.Contains(t, r.Body, `"status":"scheduled"`)
		require.Contains(t, r.Body, `"send_at":"2027-12-01T15:00:00Z"`)
		r = e.api("POST", fmt.Sprintf("/api/v1/campaigns/%d/cancel", c.ID), tok, map[string]any{})
		require.Equal(t, http.StatusOK, r.Status)
		r = e.api("POST", fmt.Sprintf("/api/v1/campaigns/%d/resume", c.ID), tok, map[string]any{})
		require.Equal(t, http.StatusConflict, r.Status)

		g := e.newGift()
		r = e.api("POST", fmt.Sprintf("/api/v1/campaigns/%d/gift-codes", g.ID), tok, map[string]any{"codes": []string{"A-1", "A-2", "A-1"}})
		require.Equal(t, http.StatusOK, r.Status, r.Body)
		require.JSONEq(t, `{"added":2,"available":2}`, r.Body)
	})
}

func TestRSVPPageAndCheckinAPI(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		e := setup(t, dialect)
		f := e.newSent()
		anon := e.anon()
		rsvp := "/r/" + f.token(campaigns.TokenRSVP)
		r := anon.get(rsvp)
		require.Equal(t, http.StatusOK, r.Status)
		require.Contains(t, r.Body, "Art Institute")
		require.Contains(t, r.Body, "America/Chicago", "the time names its zone")
		require.Contains(t, r.Body, `<label for="guests">`)

		require.Contains(t, r.Body, "You have not answered yet.")
		require.Regexp(t, `value="yes" checked>`, r.Body, "yes is offered first")

		r = anon.postForm(rsvp, url.Values{"answer": {"yes"}, "guests": {"1"}})
		require.Equal(t, http.StatusOK, r.Status, r.Body)
		require.Contains(t, r.Body, `You are coming</strong> with 1 guest.`)
		require.Contains(t, r.Body, `<p class="flash flash-ok" role="status">Your answer is saved.</p>`)
		require.Contains(t, r.Body, `<option value="1" selected>1</option>`)
		require.Contains(t, r.Body, `<option value="0" >0</option>`)
		// Capacity 2: the next yes (with a guest) waits.
		r = anon.postForm("/r/"+f.claims[1].Tokens[campaigns.TokenRSVP], url.Values{"answer": {"yes"}, "guests": {"1"}})
		require.Contains(t, r.Body, "number 1 on the waitlist")
		require.Regexp(t, `value="yes" checked>`, r.Body)
		r = anon.postForm(rsvp, url.Values{"answer": {"yes"}, "guests": {"5"}})
		require.Equal(t, http.StatusUnprocessableEntity, r.Status)
		require.Contains(t, r.Body, `<p class="flash flash-error" role="status">too many guests (guests: you may bring up to 1)</p>`)
		r = anon.postForm(rsvp, url.Values{"answer": {"yes"}, "guests": {"1"}})
		require.Contains(t, r.Body, "That is already your answer; nothing changed.")
		require.Contains(t, r.Body, `class="flash flash-ok"`)
		r = anon.postForm(rsvp, url.Values{"answer": {"no"}})
		require.Contains(t, r.Body, "You said you cannot come.")
		require.Regexp(t, `value="no" checked>`, r.Body)
		require.NotRegexp(t, `value="yes" checked>`, r.Body)
		r = anon.get("/r/" + f.claims[1].Tokens[campaigns.TokenRSVP])
		require.Contains(t, r.Body, `You are coming</strong> with 1 guest.`, "the seat freed went to the guest waiting")
		r = anon.postForm(rsvp, url.Values{"answer": {"yes"}, "guests": {"0"}})
		require.Contains(t, r.Body, "number 1 on the waitlist", "seats freed are given in turn")

		r = anon.get("/r/forgedforgedforgedforgedforgedxx")
		require.Equal(t, http.StatusNotFound, r.Status)
		require.Contains(t, r.Body, "not valid")

		r = anon.get(rsvp + "/event.ics")
		require.Equal(t, http.StatusOK, r.Status)
		require.Contains(t, r.Body, "BEGIN:VCALENDAR")
		// The event's one UID, as in the invitation email's attachment
		// (jobs' TestEmailsAsARecipientSeesThem): a guest who uses both has one entry.
		require.Contains(t, r.Body, fmt.Sprintf("\r\nUID:campaign-%d@rapport.test\r\n", f.campaign.ID))

		path := fmt.Sprintf("/api/v1/campaigns/%d/checkins", f.campaign.ID)
		tok := e.tokens[campaigns.RoleRep]
		r = e.api("POST", path, tok, map[string]any{"customer_id": f.claims[0].CustomerID})
		require.Equal(t, http.StatusCreated, r.Status, r.Body)
		for _, k := range []string{"invitation_id", "customer_id", "checked_in_at", "level"} {
			require.Contains(t, r.JSON(t), k)
		}
		r = e.api("POST", path, tok, map[string]any{"token": f.claims[0].Tokens[campaigns.TokenCheckin]})
		require.Equal(t, http.StatusOK, r.Status, "the second check-in answers 200")
		r = e.api("POST", path, tok, map[string]any{"name": "Walk In", "email": "walk.in@example.com"})
		require.Equal(t, http.StatusCreated, r.Status, r.Body)

		// The rep's page finds the walk-in by three letters.
		rep := e.signIn(campaigns.RoleRep)
		r = rep.get(fmt.Sprintf("/campaigns/%d/checkin?q=wal", f.campaign.ID))
		require.Equal(t, http.StatusOK, r.Status)
		require.Contains(t, r.Body, "Walk In")
		require.Contains(t, r.Body, "walk-in")

		// Unsubscribe by one-click POST, with no session and no CSRF token.
		req := httptest.NewRequest("POST", "/u/"+f.token(campaigns.TokenUnsubscribe), strings.NewReader("List-Unsubscribe=One-Click"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r = e.serve(req)
		require.Equal(t, http.StatusOK, r.Status, r.Body)
		require.Equal(t, campaigns.Unsubscribed, e.customer(f.claims[0].CustomerID).ConsentState)
	})
}

func TestSendGridWebhook(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		key, pub := sendgridfake.NewWebhookKey()
		v, err := jobs.NewWebhookVerifier(pub)
		require.NoError(t, err)
		e := setup(t, dialect, func(d *app.Deps) { d.Webhook, d.ParseEvents = v, jobs.ParseEvents })
		f := e.newSent()
		events, _ := json.Marshal([]map[string]any{
			{"sg_event_id": "ev-1", "event": "bounce", "email": f.claims[1].Email, "timestamp": time.Now().Unix(),
				"reason": "550 unknown user", "invitation_id": fmt.Sprint(f.claims[1].ID)},
			{"sg_event_id": "ev-2", "event": "spamreport", "email": f.claims[2].Email, "timestamp": time.Now().Unix(),
				"invitation_id": f.claims[2].ID},
		})
		post := func(body []byte, at time.Time, sign bool) response {
			req := httptest.NewRequest("POST", "/webhooks/sendgrid", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if sign {
				sig, ts := sendgridfake.SignWebhook(key, body, at)
				req.Header.Set("X-Twilio-Email-Event-Webhook-Signature", sig)
				req.Header.Set("X-Twilio-Email-Event-Webhook-Timestamp", ts)
			}
			return e.serve(req)
		}
		require.Equal(t, http.StatusForbidden, post(events, time.Now(), false).Status, "unsigned")
		require.Equal(t, http.StatusForbidden, post(events, time.Now().Add(-6*time.Minute), true).Status, "too old")
		tampered := bytes.Replace(events, []byte("bounce"), []byte("click!"), 1)
		req := httptest.NewRequest("POST", "/webhooks/sendgrid", bytes.NewReader(tampered))
		sig, ts := sendgridfake.SignWebhook(key, events, time.Now())
		req.Header.Set("X-Twilio-Email-Event-Webhook-Signature", sig)
		req.Header.Set("X-Twilio-Email-Event-Webhook-Timestamp", ts)
		require.Equal(t, http.StatusForbidden, e.serve(req).Status, "tampered")

		for i := 0; i < 3; i++ {
			r := post(events, time.Now(), true)
			require.Equal(t, http.StatusOK, r.Status, r.Body)
			if i == 0 {
				require.JSONEq(t, `{"received":2,"applied":2}`, r.Body)
			} else {
				require.JSONEq(t, `{"received":2,"applied":0}`, r.Body)
			}
		}
		require.Equal(t, campaigns.Bounced, e.customer(f.claims[1].CustomerID).ConsentState)
		require.Equal(t, campaigns.SpamReported, e.customer(f.claims[2].CustomerID).ConsentState)
		fn, err := e.store.Funnel(context.Background(), f.campaign)
		require.NoError(t, err)
		require.EqualValues(t, 1, fn.Failed)
	})
}

func TestCampaignBuilderAndOutboxPages(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		e := setup(t, dialect)
		c := e.signIn(campaigns.RoleCoordinator)
		r := c.get("/campaigns/new")
		require.Equal(t, http.StatusOK, r.Status)
		require.Contains(t, r.Body, `id="preview-count"`)
		r = c.submit("/campaigns", url.Values{"kind": {"event"}, "name": {"<b>Golf</b>"}, "time_zone": {"America/Chicago"},
			"venue": {"Lakeside"}, "starts_at": {"2027-06-01T10:00"}, "ends_at": {"2027-06-01T09:00"}, "capacity": {"0"}})
		require.Equal(t, http.StatusUnprocessableEntity, r.Status)
		require.Contains(t, r.Body, "must be after starts_at")
		require.Contains(t, r.Body, "must be at least 1")
		require.Contains(t, r.Body, "&lt;b&gt;Golf&lt;/b&gt;", "typed values come back, escaped")
		r = c.submit("/campaigns", url.Values{"kind": {"event"}, "name": {"<b>Golf</b>"}, "time_zone": {"America/Chicago"},
			"venue": {"Lakeside"}, "starts_at": {"2027-06-01T10:00"}, "ends_at": {"2027-06-01T14:00"}, "capacity": {"30"},
			"min_spend": {"$300"}, "metros": {"Chicago"}, "holdout_percent": {"10"}})
		require.Equal(t, http.StatusSeeOther, r.Status, r.Body)
		r = c.follow(r)
		require.Equal(t, http.StatusOK, r.Status)
		require.Contains(t, r.Body, "&lt;b&gt;Golf&lt;/b&gt;")
		require.Contains(t, r.Body, "Jun 1, 2027 10:00 AM CDT", "times in the campaign's zone")
		require.NotContains(t, r.Body, "<b>Golf</b>")

		f := e.newSent()
		r = c.get(fmt.Sprintf("/outbox?campaign=%d", f.campaign.ID))
		require.Equal(t, http.StatusOK, r.Status)
		require.Contains(t, r.Body, "You&#39;re invited")
		r = c.get(fmt.Sprintf("/outbox/%d/body.html", f.outboxID))
		require.Equal(t, http.StatusOK, r.Status)
		require.Contains(t, r.Header.Get("Content-Security-Policy"), "sandbox")
	})
}

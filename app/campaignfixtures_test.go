package app_test

import (
	"context"
	"fmt"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
)

// eventFixture is an event sent to the env's customers (through the
// store, as the dispatcher would), with each invitee's link tokens.
type eventFixture struct {
	campaign *campaigns.Campaign
	claims   []campaigns.Claim
	outboxID int64
}

func eventInput(name string) campaigns.CampaignInput {
	start := time.Now().Add(10 * 24 * time.Hour).Truncate(time.Hour)
	end := start.Add(3 * time.Hour)
	return campaigns.CampaignInput{Kind: campaigns.KindEvent, Name: name, TimeZone: "America/Chicago",
		Event: &campaigns.EventFields{Venue: "Art Institute", Address: "111 S Michigan Ave, Chicago",
			StartsAt: &start, EndsAt: &end, Capacity: 2, GuestsPerInvite: 1}}
}

// newDraft creates a draft event campaign (a throwaway target).
func (e *env) newDraft() *campaigns.Campaign {
	e.t.Helper()
	c, err := e.store.CreateCampaign(context.Background(), eventInput(e.unique("Draft ")), "test")
	require.NoError(e.t, err)
	return c
}

// newGift creates a draft gift campaign fulfilled with codes.
func (e *env) newGift() *campaigns.Campaign {
	e.t.Helper()
	c, err := e.store.CreateCampaign(context.Background(), campaigns.CampaignInput{Kind: campaigns.KindGift,
		Name: e.unique("Gift "), TimeZone: "UTC", Gift: &campaigns.GiftFields{Type: "gift_card", FaceValueCents: 1000}}, "test")
	require.NoError(e.t, err)
	return c
}

// newSent sends an event to every customer and returns it with tokens.
func (e *env) newSent() *eventFixture {
	e.t.Helper()
	ctx := context.Background()
	c := e.newDraft()
	_, err := e.store.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true})
	require.NoError(e.t, err)
	_, err = e.store.Start(ctx, c.ID)
	require.NoError(e.t, err)
	batch := e.unique("batch")
	cl, err := e.store.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "test", BatchID: batch, Limit: 100,
		Lease: time.Minute, CancelBy: time.Now().Add(time.Hour)})
	require.NoError(e.t, err)
	var ids []int64
	var msgs []campaigns.OutboxMessage
	for _, x := range cl {
		ids = append(ids, x.ID)
		inv, cid := x.ID, c.ID
		msgs = append(msgs, campaigns.OutboxMessage{CampaignID: &cid, InvitationID: &inv, Kind: "invitation", BatchID: batch,
			ToEmail: x.Email, ToName: x.Name, FromEmail: "events@example.com", Subject: "You're invited",
			TextBody: "text", HTMLBody: "<p>html</p>", Headers: "{}", Attachments: "[]", CreatedAt: time.Now()})
	}
	kept, err := e.store.StoreOutbox(ctx, batch, msgs)
	require.NoError(e.t, err)
	require.True(e.t, kept)
	_, err = e.store.SettleSent(ctx, campaigns.QueueInvitations, "test", batch, ids, "m", true)
	require.NoError(e.t, err)
	out, err := e.store.Outbox(ctx, c.ID, 1)
	require.NoError(e.t, err)
	c, err = e.store.Campaign(ctx, c.ID)
	require.NoError(e.t, err)
	return &eventFixture{campaign: c, claims: cl, outboxID: out[0].ID}
}

func (f *eventFixture) token(kind string) string { return f.claims[0].Tokens[kind] }

func cid(format string, c *campaigns.Campaign) string { return fmt.Sprintf(format, c.ID) }

// newSurvey sends an event, checks the first guest in and claims their
// survey, returning its link token.
func (e *env) newSurvey() string {
	e.t.Helper()
	return e.surveyOf(e.customers[0].ID)
}

// surveyOf is newSurvey for the guest who is customer customerID.
func (e *env) surveyOf(customerID int64) string {
	e.t.Helper()
	ctx := context.Background()
	f := e.newSent()
	_, err := e.store.CheckIn(ctx, f.campaign.ID, campaigns.CheckinTarget{CustomerID: customerID}, nil)
	require.NoError(e.t, err)
	past := time.Now().UTC().Add(-48 * time.Hour)
	require.NoError(e.t, e.store.DB().Exec("UPDATE campaigns SET starts_at = ?, ends_at = ? WHERE id = ?", past.Add(-time.Hour), past, f.campaign.ID).Error)
	_, err = e.store.EnqueueSurveys(ctx)
	require.NoError(e.t, err)
	cl, err := e.store.ClaimFollowups(ctx, f.campaign.ID, campaigns.FollowSurvey, campaigns.ClaimOptions{Worker: "t",
		BatchID: e.unique("s"), Limit: 10, Lease: time.Minute, CancelBy: time.Now().Add(time.Hour)})
	require.NoError(e.t, err)
	require.Len(e.t, cl, 1)
	return cl[0].Tokens[campaigns.TokenSurvey]
}

// newDetractor is an invitation answered 3 and not yet followed up.
func (e *env) newDetractor() int64 {
	e.t.Helper()
	return e.detractorOf(e.customers[0].ID)
}

// detractorOf is newDetractor for customer customerID.
func (e *env) detractorOf(customerID int64) int64 {
	e.t.Helper()
	score := 3
	v, err := e.store.AnswerSurvey(context.Background(), e.surveyOf(customerID), &score, nil)
	require.NoError(e.t, err)
	return v.InvitationID
}

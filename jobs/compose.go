package jobs

import (
	"bytes"
	"fmt"
	"html"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/views"
)

// Substitution tags filled per recipient. They contain only characters
// that need no escaping in HTML, text or URLs.
const (
	tagFirstName     = "-first_name-"
	tagFirstNameHTML = "-first_name_html-"
	tagRSVP          = "-rsvp_url-"
	tagUnsubscribe   = "-unsubscribe_url-"
	tagQR            = "-qr_url-"
	tagGiftCode      = "-gift_code-"
	tagSurvey        = "-survey_url-"
)

// Composer renders campaign emails from the templates in views/emails.
type Composer struct {
	BaseURL       string
	From          mail.Address
	PostalAddress string
	templates     map[string]views.EmailTemplate
}

// NewComposer parses the email templates once.
func NewComposer(baseURL string, from mail.Address, postal string) (*Composer, error) {
	t, err := views.Emails()
	if err != nil {
		return nil, err
	}
	if baseURL == "" {
		baseURL = "http://localhost:3000"
	}
	if strings.TrimSpace(postal) == "" {
		postal = "(set MAIL_POSTAL_ADDRESS: the sender's postal address belongs in every marketing email)"
	}
	return &Composer{BaseURL: strings.TrimRight(baseURL, "/"), From: from, PostalAddress: postal, templates: t}, nil
}

// emailData is what the email templates see.
type emailData struct {
	Subject        string
	Campaign       *campaigns.Campaign
	When           string
	Deadline       string
	MapURL         string
	GiftLabel      string
	FaceValue      string
	HasCode        bool
	PostalAddress  string
	FirstName      string
	FirstNameHTML  string
	Heading        string // follow-ups: what this email is about
	Lead           string
	RSVPURL        string
	UnsubscribeURL string
	QRURL          string
	GiftCode       string
	SurveyURL      string
	Scores         []int
}

// notices are the follow-up emails' subject, heading and first lines.
var notices = map[string]struct{ subject, heading, lead string }{
	campaigns.FollowReminder: {"Reminder: %s", "See you soon", "A reminder that you said you would come. We look forward to seeing you."},
	campaigns.FollowSeat:     {"Good news: a seat for you at %s", "A seat is yours", "A seat has freed up and it is yours: you are now on the guest list. If you can no longer come, please tell us so someone else can have it."},
	campaigns.FollowUpdate:   {"Changed: %s has a new time or place", "The event has changed", "The time or place of the event has changed. Here are the new details; the calendar file updates your calendar."},
}

// Subject is the campaign's subject line, or a sensible default.
func Subject(c *campaigns.Campaign) string {
	if c.Subject != "" {
		return c.Subject
	}
	if c.Kind == campaigns.KindGift {
		return "A thank-you gift for you: " + c.Name
	}
	return "You're invited: " + c.Name
}

// Batch renders one batch for claimed invitations. The content is shared;
// each recipient's name, links and gift code are substitutions.
func (cp *Composer) Batch(c *campaigns.Campaign, claims []campaigns.Claim, batchID string, sendAt time.Time) (*Batch, error) {
	kind := "invitation"
	if c.Kind == campaigns.KindGift {
		kind = "gift"
	}
	if len(claims) > 0 && claims[0].Kind != "" {
		kind = claims[0].Kind
	}
	tpl, subject := kind, Subject(c)
	n, isNotice := notices[kind]
	if isNotice {
		tpl, subject = "notice", fmt.Sprintf(n.subject, c.Name)
	}
	if kind == campaigns.FollowSurvey {
		subject = "How was " + c.Name + "? One question"
	}
	d := emailData{Subject: subject, Heading: n.heading, Lead: n.lead, Campaign: c, When: campaigns.FormatWhen(c), PostalAddress: cp.PostalAddress,
		FirstName: tagFirstName, FirstNameHTML: tagFirstNameHTML, RSVPURL: tagRSVP, UnsubscribeURL: tagUnsubscribe,
		QRURL: tagQR, GiftCode: tagGiftCode, SurveyURL: tagSurvey, Scores: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, GiftLabel: campaigns.GiftTypes[c.GiftType],
		FaceValue: campaigns.FormatMoney(c.FaceValueCents), HasCode: c.Fulfilment == "codes"}
	if c.RSVPDeadline != nil {
		d.Deadline = c.RSVPDeadline.In(c.Location()).Format("Monday, January 2, 3:04 PM MST")
	}
	if c.Address != "" {
		d.MapURL = "https://www.openstreetmap.org/search?query=" + url.QueryEscape(c.Address)
	}
	t := cp.templates[tpl]
	var h, txt bytes.Buffer
	if err := t.HTML.Execute(&h, d); err != nil {
		return nil, fmt.Errorf("render %s email: %w", kind, err)
	}
	if err := t.Text.Execute(&txt, d); err != nil {
		return nil, fmt.Errorf("render %s email: %w", kind, err)
	}
	b := &Batch{ID: batchID, CampaignID: c.ID, Kind: kind, SendAt: sendAt, From: cp.From, Subject: d.Subject,
		Text: txt.String(), HTML: h.String(), Categories: []string{"rapport", kind, "campaign-" + fmt.Sprint(c.ID)}}
	if c.Kind == campaigns.KindEvent && kind != campaigns.FollowSurvey {
		cal, err := c.Calendar(cp.BaseURL, cp.From)
		if err != nil {
			return nil, err
		}
		b.Attachments = []Attachment{{Filename: "invitation.ics", Type: "text/calendar; charset=utf-8; method=PUBLISH", Content: cal}}
	}
	for _, cl := range claims {
		unsub := cp.BaseURL + "/u/" + cl.Tokens[campaigns.TokenUnsubscribe]
		first := firstName(cl.Name)
		r := Recipient{InvitationID: cl.Invitation.ID, Email: cl.Email, Name: cl.Name,
			Substitutions: map[string]string{
				tagFirstName: first, tagFirstNameHTML: html.EscapeString(first), tagUnsubscribe: unsub,
			},
			Headers: map[string]string{
				"List-Unsubscribe":      "<" + unsub + ">",
				"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
			}}
		if c.Kind == campaigns.KindEvent {
			r.Substitutions[tagRSVP] = cp.BaseURL + "/r/" + cl.Tokens[campaigns.TokenRSVP]
			r.Substitutions[tagQR] = cp.BaseURL + "/q/" + cl.Tokens[campaigns.TokenCheckin] + ".png"
		}
		if c.Kind == campaigns.KindGift && c.Fulfilment == "codes" {
			r.Substitutions[tagGiftCode] = cl.GiftCode
		}
		if tok, ok := cl.Tokens[campaigns.TokenSurvey]; ok {
			r.Substitutions[tagSurvey] = cp.BaseURL + "/s/" + tok
		}
		b.Recipients = append(b.Recipients, r)
	}
	return b, nil
}

func firstName(full string) string {
	f := strings.Fields(full)
	if len(f) == 0 {
		return "customer"
	}
	return f[0]
}

// Personalize applies a recipient's substitutions to a text: what the
// outbox stores and what SendGrid does on its side.
func Personalize(s string, subs map[string]string) string {
	if len(subs) == 0 {
		return s
	}
	pairs := make([]string, 0, 2*len(subs))
	for k, v := range subs {
		pairs = append(pairs, k, v)
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

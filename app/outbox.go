package app

import (
	"encoding/json"

	"github.com/gofiber/fiber/v2"
)

func (a *App) outboxPage(c *fiber.Ctx) error {
	campaignID := int64(c.QueryInt("campaign", 0))
	ctx := c.UserContext()
	msgs, err := a.store.Outbox(ctx, campaignID, 200)
	if err != nil {
		return err
	}
	n, err := a.store.OutboxCount(ctx, campaignID)
	if err != nil {
		return err
	}
	return a.render(c, "pages/outbox", fiber.Map{"Title": "Outbox", "Messages": msgs, "Total": n,
		"CampaignID": campaignID, "Mailer": a.deps.MailerName})
}

func (a *App) outboxMessagePage(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	m, err := a.store.OutboxMessage(c.UserContext(), id)
	if err != nil {
		return err
	}
	var headers map[string]string
	_ = json.Unmarshal([]byte(m.Headers), &headers)
	var atts []struct {
		Filename string `json:"filename"`
		Type     string `json:"type"`
	}
	_ = json.Unmarshal([]byte(m.Attachments), &atts)
	return a.render(c, "pages/outbox_message", fiber.Map{"Title": m.Subject, "M": m, "Headers": headers, "Attachments": atts})
}

// outboxMessageHTML serves an email's HTML part on its own, for the
// preview frame: sandboxed, with a policy that allows the email's inline
// styles but no scripts.
func (a *App) outboxMessageHTML(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	m, err := a.store.OutboxMessage(c.UserContext(), id)
	if err != nil {
		return err
	}
	c.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: http: https:; frame-ancestors 'self'; sandbox")
	c.Set("X-Frame-Options", "SAMEORIGIN")
	c.Set(fiber.HeaderContentType, "text/html; charset=utf-8")
	return c.SendString(m.HTMLBody)
}

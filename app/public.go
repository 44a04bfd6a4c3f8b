package app

import (
	"bytes"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/skip2/go-qrcode"

	"github.com/rapport/rapport/campaigns"
)

// Public pages: links from emails that work without signing in. Every
// unknown, expired or tampered token gets the same friendly 404.

func (a *App) unsubscribePage(c *fiber.Ctx) error {
	t, err := a.store.ResolveToken(c.UserContext(), campaigns.TokenUnsubscribe, c.Params("token"))
	if err != nil {
		return err
	}
	cu, err := a.store.Customer(c.UserContext(), t.CustomerID)
	if err != nil {
		return err
	}
	return a.render(c, "pages/unsubscribe", fiber.Map{"Title": "Unsubscribe", "Token": c.Params("token"),
		"Done": cu.ConsentState != campaigns.Subscribed, "Email": maskEmail(cu.Email)})
}

// unsubscribe is both the page's button and the RFC 8058 one-click POST
// that mail providers send (List-Unsubscribe=One-Click), without a session
// or CSRF token: the token itself is the credential.
func (a *App) unsubscribe(c *fiber.Ctx) error {
	how := "one-click unsubscribe"
	if c.FormValue("List-Unsubscribe") == "" {
		how = "unsubscribe page"
	}
	cu, err := a.store.Unsubscribe(c.UserContext(), c.Params("token"), how)
	if err != nil {
		return err
	}
	if how == "one-click unsubscribe" {
		return c.SendStatus(fiber.StatusOK)
	}
	return a.render(c, "pages/unsubscribe", fiber.Map{"Title": "Unsubscribed", "Done": true, "Email": maskEmail(cu.Email)})
}

// maskEmail shows enough of an address to recognise it, not to harvest it.
func maskEmail(e string) string {
	at := bytes.IndexByte([]byte(e), '@')
	if at <= 1 {
		return e
	}
	return e[:1] + "…" + e[at:]
}

// qrImage draws an invitation's check-in QR code: it encodes the check-in
// URL a signed-in rep opens with the phone camera.
func (a *App) qrImage(c *fiber.Ctx) error {
	tok := c.Params("token")
	if _, err := a.store.ResolveToken(c.UserContext(), campaigns.TokenCheckin, tok); err != nil {
		return err
	}
	png, err := qrcode.Encode(a.baseURL(c)+"/c/"+tok, qrcode.Medium, 320)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "image/png")
	c.Set(fiber.HeaderCacheControl, "private, max-age=86400")
	return c.Send(png)
}

// baseURL is BASE_URL, or the origin of this request when unset (demos).
func (a *App) baseURL(c *fiber.Ctx) string {
	if a.cfg.BaseURL != "" {
		return a.cfg.BaseURL
	}
	return c.BaseURL()
}

// sendgridWebhook records SendGrid's delivery events after checking their
// signature; each event applies once however often SendGrid repeats it.
func (a *App) sendgridWebhook(c *fiber.Ctx) error {
	if a.deps.Webhook == nil {
		return campaigns.Errorf(campaigns.EFORBIDDEN, "the event webhook is not configured (SENDGRID_WEBHOOK_PUBLIC_KEY)")
	}
	body := c.Body()
	if err := a.deps.Webhook.Verify(body, c.Get("X-Twilio-Email-Event-Webhook-Signature"),
		c.Get("X-Twilio-Email-Event-Webhook-Timestamp"), time.Now()); err != nil {
		return campaigns.Errorf(campaigns.EFORBIDDEN, "signature check failed: %v", err)
	}
	evs, err := a.deps.ParseEvents(body)
	if err != nil {
		return campaigns.Errorf(campaigns.EBADREQUEST, "%v", err)
	}
	n, err := a.store.ApplyEmailEvents(c.UserContext(), evs)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"received": len(evs), "applied": n})
}

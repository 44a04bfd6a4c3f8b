package app

import (
	"net/url"

	"github.com/gofiber/fiber/v2"
)

// render draws a page inside the base layout with what every page needs:
// who is signed in, the CSRF token, the flash message and the navigation.
func (a *App) render(c *fiber.Ctx, name string, data fiber.Map) error {
	if data == nil {
		data = fiber.Map{}
	}
	p := principal(c)
	data["Principal"] = p
	data["Path"] = c.Path()
	data["CSRF"], _ = c.Locals("csrf").(string)
	if p != nil {
		data["Can"] = func(perm string) bool { return Allowed(p.Role, Permission(perm)) }
		data["Flash"] = a.popFlash(c)
	} else {
		data["Can"] = func(string) bool { return false }
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Render(name, data, "layouts/base")
}

// Flash is a one-time message shown on the next page.
type Flash struct {
	Kind    string // ok, error
	Message string
}

func (a *App) flash(c *fiber.Ctx, kind, msg string) {
	sess, err := a.sessions.Get(c)
	if err != nil {
		return
	}
	sess.Set("flash_kind", kind)
	sess.Set("flash", msg)
	_ = sess.Save()
}

func (a *App) popFlash(c *fiber.Ctx) *Flash {
	if c.Cookies("rapport_session") == "" {
		return nil
	}
	sess, err := a.sessions.Get(c)
	if err != nil {
		return nil
	}
	msg, _ := sess.Get("flash").(string)
	if msg == "" {
		return nil
	}
	kind, _ := sess.Get("flash_kind").(string)
	sess.Delete("flash")
	sess.Delete("flash_kind")
	_ = sess.Save()
	return &Flash{Kind: kind, Message: msg}
}

// redirectWith sets a flash message and sends the browser to path.
func (a *App) redirectWith(c *fiber.Ctx, path, kind, msg string) error {
	a.flash(c, kind, msg)
	return c.Redirect(path, fiber.StatusSeeOther)
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

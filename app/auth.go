package app

import (
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/rapport/rapport/campaigns"
)

// Principal is who makes a request: a signed-in user or an API token.
type Principal struct {
	User  *campaigns.User     // nil for API tokens
	Token *campaigns.APIToken // nil for sessions
	Role  campaigns.Role
	Name  string // for the ledger's "by": an email or "token:NAME"
}

const principalKey = "principal"

func principal(c *fiber.Ctx) *Principal {
	p, _ := c.Locals(principalKey).(*Principal)
	return p
}

func bearer(c *fiber.Ctx) string {
	h := c.Get(fiber.HeaderAuthorization)
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// loadUser finds who is calling: a bearer token on the API, else the
// session cookie. It never refuses; require does.
func (a *App) loadUser(c *fiber.Ctx) error {
	ctx := c.UserContext()
	if tok := bearer(c); tok != "" && strings.HasPrefix(c.Path(), "/api/") {
		t, err := a.store.TokenBySecret(ctx, tok)
		if err != nil {
			return err
		}
		c.Locals(principalKey, &Principal{Token: t, Role: t.Role, Name: "token:" + t.Name})
		return c.Next()
	}
	if c.Cookies("rapport_session") == "" {
		return c.Next()
	}
	sess, err := a.sessions.Get(c)
	if err != nil {
		return err
	}
	uid, _ := sess.Get("uid").(int64)
	if uid == 0 {
		return c.Next()
	}
	signedIn, _ := sess.Get("signed_in_at").(int64)
	u, err := a.store.User(ctx, uid)
	if err != nil || u.DisabledAt != nil || (u.SessionsValidAfter != nil && signedIn < u.SessionsValidAfter.UnixNano()) {
		// The user was removed or disabled, or their password was reset
		// since this session began: end it.
		_ = sess.Destroy()
		return c.Next()
	}
	c.Locals(principalKey, &Principal{User: u, Role: u.Role, Name: u.Email})
	return c.Next()
}

// require lets a request through only if its principal holds perm.
func (a *App) require(perm Permission) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if perm == PermPublic {
			return c.Next()
		}
		p := principal(c)
		if p == nil {
			if wantsJSON(c) {
				return campaigns.Errorf(campaigns.EUNAUTHORIZED, "sign in, or send Authorization: Bearer TOKEN")
			}
			if c.Method() == fiber.MethodGet {
				return c.Redirect("/login?next="+urlQueryEscape(c.OriginalURL()), fiber.StatusSeeOther)
			}
			return campaigns.Errorf(campaigns.EUNAUTHORIZED, "your session has ended; sign in again")
		}
		if !Allowed(p.Role, perm) {
			return campaigns.Errorf(campaigns.EFORBIDDEN, "your role (%s) does not allow this", p.Role)
		}
		return c.Next()
	}
}

func (a *App) loginPage(c *fiber.Ctx) error {
	if principal(c) != nil {
		return c.Redirect("/", fiber.StatusSeeOther)
	}
	return a.render(c, "pages/login", fiber.Map{"Title": "Sign in", "Next": safeNext(c.Query("next"))})
}

func (a *App) login(c *fiber.Ctx) error {
	email := utils.CopyString(c.FormValue("email"))
	next := safeNext(c.FormValue("next"))
	u, err := a.store.Authenticate(c.UserContext(), email, c.FormValue("password"))
	if err != nil {
		if campaigns.ErrorCode(err) != campaigns.EUNAUTHORIZED {
			return err
		}
		c.Status(fiber.StatusUnauthorized)
		return a.render(c, "pages/login", fiber.Map{"Title": "Sign in", "Next": next, "Email": email,
			"LoginError": "Wrong email or password."})
	}
	sess, err := a.sessions.Get(c)
	if err != nil {
		return err
	}
	// A new session id at sign-in: a session fixed before it is worthless.
	if err := sess.Regenerate(); err != nil {
		return err
	}
	sess.Delete(csrfSessionKey) // and a new CSRF token
	sess.Set("uid", u.ID)
	sess.Set("signed_in_at", time.Now().UnixNano())
	if err := sess.Save(); err != nil {
		return err
	}
	a.log.Info("signed in", "user", u.Email, "role", u.Role)
	return c.Redirect(next, fiber.StatusSeeOther)
}

func (a *App) logout(c *fiber.Ctx) error {
	sess, err := a.sessions.Get(c)
	if err != nil {
		return err
	}
	if err := sess.Destroy(); err != nil {
		return err
	}
	return c.Redirect("/login", fiber.StatusSeeOther)
}

// home is the dashboard: upcoming events, campaigns sending, recent
// promotions, NPS and the follow-ups waiting.
func (a *App) home(c *fiber.Ctx) error {
	d, err := a.store.Dashboard(c.UserContext())
	if err != nil {
		return err
	}
	return a.render(c, "pages/home", fiber.Map{"Title": "Rapport", "D": d})
}

// safeNext keeps redirects after sign-in on this site.
func safeNext(n string) string {
	if !strings.HasPrefix(n, "/") || strings.HasPrefix(n, "//") || len(n) > 2000 {
		return "/"
	}
	// No control characters, spaces or backslashes: they let a header be
	// injected or a browser read "/\t/evil.example" as another site.
	for _, r := range n {
		if r <= ' ' || r == 0x7f || r == '\\' {
			return "/"
		}
	}
	return utils.CopyString(n)
}

package app

import (
	"strconv"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/rapport/rapport/campaigns"
)

func (a *App) usersPage(c *fiber.Ctx) error {
	return a.renderUsers(c, fiber.Map{})
}

func (a *App) renderUsers(c *fiber.Ctx, extra fiber.Map) error {
	ctx := c.UserContext()
	users, err := a.store.Users(ctx)
	if err != nil {
		return err
	}
	tokens, err := a.store.Tokens(ctx)
	if err != nil {
		return err
	}
	refs, err := a.store.ReferralsByUser(ctx)
	if err != nil {
		return err
	}
	data := fiber.Map{"Title": "Users and API tokens", "Users": users, "Tokens": tokens, "Roles": campaigns.Roles, "Referrals": refs}
	for k, v := range extra {
		data[k] = v
	}
	return a.render(c, "pages/users", data)
}

func (a *App) createUserForm(c *fiber.Ctx) error {
	role, _ := campaigns.ParseRole(c.FormValue("role"))
	password := c.FormValue("password")
	generated := password == ""
	if generated {
		password = campaigns.GeneratePassword()
	}
	in := campaigns.NewUser{Email: utils.CopyString(c.FormValue("email")), Name: utils.CopyString(c.FormValue("name")),
		Role: role, Password: password}
	u, err := a.store.CreateUser(c.UserContext(), in)
	if err != nil {
		if code := campaigns.ErrorCode(err); code == campaigns.EINVALID || code == campaigns.ECONFLICT {
			c.Status(fiber.StatusUnprocessableEntity)
			return a.renderUsers(c, fiber.Map{"UserError": err, "Form": in})
		}
		return err
	}
	a.log.Info("user created", "user", u.Email, "role", u.Role, "by", principal(c).Name)
	data := fiber.Map{"Created": u}
	if generated {
		// Shown once, on this response only; never stored in plain text.
		data["GeneratedPassword"] = password
	}
	return a.renderUsers(c, data)
}

func (a *App) updateUserForm(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	role, err := campaigns.ParseRole(c.FormValue("role"))
	if err != nil {
		return a.redirectWith(c, "/users", "error", err.Error())
	}
	u, err := a.store.UpdateUser(c.UserContext(), id, role, c.FormValue("disabled") == "on")
	if err != nil {
		if campaigns.ErrorCode(err) == campaigns.ECONFLICT {
			return a.redirectWith(c, "/users", "error", err.Error())
		}
		return err
	}
	msg := u.Email + " is now " + string(u.Role)
	if u.DisabledAt != nil {
		msg += " and cannot sign in"
	}
	return a.redirectWith(c, "/users", "ok", msg+".")
}

func (a *App) resetPasswordForm(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	u, err := a.store.User(c.UserContext(), id)
	if err != nil {
		return err
	}
	password := campaigns.GeneratePassword()
	if err := a.store.SetPassword(c.UserContext(), id, password); err != nil {
		return err
	}
	return a.renderUsers(c, fiber.Map{"Created": u, "GeneratedPassword": password, "Reset": true})
}

func (a *App) createTokenForm(c *fiber.Ctx) error {
	role, _ := campaigns.ParseRole(c.FormValue("role"))
	var by *int64
	if p := principal(c); p.User != nil {
		by = &p.User.ID
	}
	plain, t, err := a.store.CreateToken(c.UserContext(), utils.CopyString(c.FormValue("name")), role, by)
	if err != nil {
		if campaigns.ErrorCode(err) == campaigns.EINVALID {
			c.Status(fiber.StatusUnprocessableEntity)
			return a.renderUsers(c, fiber.Map{"TokenError": err})
		}
		return err
	}
	a.log.Info("API token created", "token", t.Name, "role", t.Role, "by", principal(c).Name)
	return a.renderUsers(c, fiber.Map{"NewToken": plain, "NewTokenInfo": t})
}

func (a *App) revokeTokenForm(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	if err := a.store.RevokeToken(c.UserContext(), id); err != nil {
		return err
	}
	return a.redirectWith(c, "/users", "ok", "Token "+strconv.FormatInt(id, 10)+" revoked: it stops working at once.")
}

package app

import (
	"strconv"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/rapport/rapport/campaigns"
)

// apiCheckin: 201 the first time a guest is checked in, 200 after.
func (a *App) apiCheckin(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	var t campaigns.CheckinTarget
	if err := decodeJSON(c, &t); err != nil {
		return err
	}
	res, err := a.store.CheckIn(c.UserContext(), id, t, principalUser(c))
	if err != nil {
		return err
	}
	status := fiber.StatusOK
	if res.Created {
		status = fiber.StatusCreated
	}
	return c.Status(status).JSON(res)
}

func (a *App) apiReferral(c *fiber.Ctx) error {
	var in campaigns.ReferralInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	r, created, err := a.store.RecordReferral(c.UserContext(), in, principalUser(c))
	if err != nil {
		return err
	}
	status := fiber.StatusOK
	if created {
		status = fiber.StatusCreated
	}
	return c.Status(status).JSON(r)
}

// checkinPage is the door's page, phone first: type-ahead search, one tap
// to check in or undo, counters, and a walk-in form.
func (a *App) checkinPage(c *fiber.Ctx) error {
	cp, err := a.campaignParam(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	q := utils.CopyString(c.Query("q"))
	list, err := a.store.SearchInvitees(ctx, cp.ID, q, 50)
	if err != nil {
		return err
	}
	counts, err := a.store.CheckinCounts(ctx, cp.ID)
	if err != nil {
		return err
	}
	return a.render(c, "pages/checkin", fiber.Map{"Title": "Check-in · " + cp.Name, "C": cp, "Q": q,
		"Invitees": list, "Counts": counts, "When": campaigns.FormatWhen(cp)})
}

// checkinSearch answers the page's type-ahead with JSON.
func (a *App) checkinSearch(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	list, err := a.store.SearchInvitees(ctx, id, c.Query("q"), 30)
	if err != nil {
		return err
	}
	counts, err := a.store.CheckinCounts(ctx, id)
	if err != nil {
		return err
	}
	if list == nil {
		list = []campaigns.Invitee{}
	}
	return c.JSON(fiber.Map{"items": list, "counts": counts})
}

// checkinForm checks in from the page: a tapped invitee, or a walk-in.
func (a *App) checkinForm(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	back := "/campaigns/" + strconv.FormatInt(id, 10) + "/checkin"
	t := campaigns.CheckinTarget{Name: utils.CopyString(c.FormValue("name")), Email: utils.CopyString(c.FormValue("email")),
		Company: utils.CopyString(c.FormValue("company"))}
	if cid, err := strconv.ParseInt(c.FormValue("customer_id"), 10, 64); err == nil {
		t.CustomerID = cid
	}
	res, err := a.store.CheckIn(c.UserContext(), id, t, principalUser(c))
	if err != nil {
		switch campaigns.ErrorCode(err) {
		case campaigns.EINVALID, campaigns.ENOTFOUND, campaigns.ECONFLICT:
			if c.Get("Accept") == "application/json" {
				return err
			}
			return a.redirectWith(c, back, "error", "Not checked in: "+err.Error())
		}
		return err
	}
	if c.Get("Accept") == "application/json" {
		return c.JSON(res)
	}
	msg := res.Name + " is checked in."
	if !res.Created {
		msg = res.Name + " was already checked in."
	} else if res.WalkIn {
		msg = res.Name + " (walk-in) is checked in."
	}
	return a.redirectWith(c, back, "ok", msg)
}

func (a *App) undoCheckinForm(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	inv, err := strconv.ParseInt(c.FormValue("invitation_id"), 10, 64)
	if err != nil {
		return &campaigns.Error{Code: campaigns.EINVALID, Message: "no guest", Fields: map[string]string{"invitation_id": "is required"}}
	}
	if err := a.store.UndoCheckIn(c.UserContext(), id, inv, principalUser(c)); err != nil {
		return err
	}
	if c.Get("Accept") == "application/json" {
		return c.JSON(fiber.Map{"invitation_id": inv, "attended": false})
	}
	return a.redirectWith(c, "/campaigns/"+strconv.FormatInt(id, 10)+"/checkin", "ok", "Check-in undone.")
}

// qrCheckinPage is where a rep's phone camera lands from a guest's QR
// code: who it is, and one button to check them in.
func (a *App) qrCheckinPage(c *fiber.Ctx) error {
	tok := c.Params("token")
	v, err := a.store.CheckinByToken(c.UserContext(), tok)
	if err != nil {
		return err
	}
	return a.render(c, "pages/checkin_qr", fiber.Map{"Title": "Check in " + v.Name, "V": v, "Token": tok})
}

func (a *App) qrCheckin(c *fiber.Ctx) error {
	tok := c.Params("token")
	v, err := a.store.CheckinByToken(c.UserContext(), tok)
	if err != nil {
		return err
	}
	res, err := a.store.CheckIn(c.UserContext(), v.CampaignID, campaigns.CheckinTarget{Token: tok}, principalUser(c))
	if err != nil {
		return err
	}
	msg := res.Name + " is checked in."
	if !res.Created {
		msg = res.Name + " was already checked in."
	}
	return a.redirectWith(c, "/campaigns/"+strconv.FormatInt(v.CampaignID, 10)+"/checkin", "ok", msg)
}

// referralForm records, from a customer's page, someone they referred.
func (a *App) referralForm(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	back := "/customers/" + strconv.FormatInt(id, 10)
	in := campaigns.ReferralInput{ReferrerID: id}
	in.Referred.Name, in.Referred.Email = utils.CopyString(c.FormValue("name")), utils.CopyString(c.FormValue("email"))
	in.Referred.Company = utils.CopyString(c.FormValue("company"))
	r, created, err := a.store.RecordReferral(c.UserContext(), in, principalUser(c))
	if err != nil {
		if campaigns.ErrorCode(err) == campaigns.EINVALID {
			return a.redirectWith(c, back, "error", "Referral not recorded: "+err.Error())
		}
		return err
	}
	if !created {
		return a.redirectWith(c, back, "ok", "That referral was already recorded.")
	}
	msg := "Referral recorded."
	if r.CampaignID != nil {
		msg += " It counts for campaign " + strconv.FormatInt(*r.CampaignID, 10) + "."
	}
	return a.redirectWith(c, back, "ok", msg)
}

package app

import (
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/rapport/rapport/campaigns"
)

// customerJSON is a customer as the API shows it.
type customerJSON struct {
	*campaigns.Customer
	LevelName  string `json:"level_name"`
	OwnerEmail string `json:"owner_email,omitempty"`
}

func toCustomerJSON(c *campaigns.Customer) customerJSON {
	out := customerJSON{Customer: c, LevelName: c.Level.Name()}
	if c.Owner != nil {
		out.OwnerEmail = c.Owner.Email
	}
	return out
}

// customerQuery reads list filters from the query string. Spend comes as
// cents on the API (min_spend_cents) and as dollars on the page (min_spend).
func customerQuery(c *fiber.Ctx, dollars bool) (campaigns.CustomerQuery, error) {
	v := campaigns.Invalid{}
	q := campaigns.CustomerQuery{Q: utils.CopyString(c.Query("q")), Sort: utils.CopyString(c.Query("sort"))}
	// Several metros are several metro= parameters: names may hold commas
	// ("Washington, DC").
	for _, m := range c.Context().QueryArgs().PeekMulti("metro") {
		if strings.TrimSpace(string(m)) != "" {
			q.Metros = append(q.Metros, string(m))
		}
	}
	money := func(name string) *int64 {
		key := name + "_cents"
		if dollars {
			key = name
		}
		raw := strings.TrimSpace(c.Query(key))
		if raw == "" {
			return nil
		}
		var n int64
		var err error
		if dollars {
			n, err = campaigns.ParseMoney(raw)
		} else {
			n, err = strconv.ParseInt(raw, 10, 64)
		}
		if err != nil || n < 0 {
			v.Add(key, "must be an amount such as %s", map[bool]string{true: "300 or $1,200.50", false: "30000 (cents)"}[dollars])
			return nil
		}
		return &n
	}
	q.MinSpendCents, q.MaxSpendCents = money("min_spend"), money("max_spend")
	for _, raw := range c.Context().QueryArgs().PeekMulti("level") {
		for _, part := range strings.Split(string(raw), ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if l, err := campaigns.ParseLevel(part); err == nil {
				q.Levels = append(q.Levels, l) // a number or a name ("good-customer")
				continue
			}
			if lo, hi, ok := strings.Cut(part, "-"); ok {
				l1, e1 := campaigns.ParseLevel(lo)
				l2, e2 := campaigns.ParseLevel(hi)
				if e1 != nil || e2 != nil || l2 < l1 {
					v.Add("level", "must be a level 1-7, a list like 2,3 or a range like 2-5")
					continue
				}
				for l := l1; l <= l2; l++ {
					q.Levels = append(q.Levels, l)
				}
				continue
			}
			l, err := campaigns.ParseLevel(part)
			if err != nil {
				v.Add("level", "must be a level 1-7, a list like 2,3 or a range like 2-5")
				continue
			}
			q.Levels = append(q.Levels, l)
		}
	}
	if raw := c.Query("owner_id"); raw != "" {
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || id <= 0 {
			v.Add("owner_id", "must be a user id")
		} else {
			q.OwnerID = &id
		}
	}
	if raw := c.Query("consent"); raw != "" {
		q.Consent = campaigns.ConsentState(utils.CopyString(raw))
	}
	if raw := c.Query("page"); raw != "" {
		p, err := strconv.Atoi(raw)
		if err != nil || p < 1 {
			v.Add("page", "must be 1 or more")
		}
		q.Page = p
	}
	q.After, q.Before = utils.CopyString(c.Query("after")), utils.CopyString(c.Query("before"))
	if q.After != "" && q.Before != "" {
		v.Add("after", "give after or before, not both")
	}
	if raw := c.Query("per_page"); raw != "" {
		p, err := strconv.Atoi(raw)
		if err != nil || p < 1 || p > 500 {
			v.Add("per_page", "must be 1-500")
		}
		q.PerPage = p
	}
	return q, v.Err()
}

func idParam(c *fiber.Ctx) (int64, error) {
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, campaigns.Errorf(campaigns.ENOTFOUND, "there is nothing at %s", c.Path())
	}
	return id, nil
}

func (a *App) apiListCustomers(c *fiber.Ctx) error {
	q, err := customerQuery(c, false)
	if err != nil {
		return err
	}
	page, err := a.store.ListCustomers(c.UserContext(), q)
	if err != nil {
		return err
	}
	items := make([]customerJSON, len(page.Items))
	for i := range page.Items {
		items[i] = toCustomerJSON(&page.Items[i])
	}
	// next_cursor (with after=) pages by the index; next_page (with
	// page=) still works but counts past every earlier row.
	var next any
	if page.NextCursor != "" {
		next = page.NextCursor
	}
	return c.JSON(fiber.Map{"items": items, "total": page.Total, "next_page": page.NextPage, "next_cursor": next})
}

func (a *App) apiCustomer(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	cu, err := a.store.Customer(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(toCustomerJSON(cu))
}

func (a *App) apiUpsertCustomer(c *fiber.Ctx) error {
	var in campaigns.CustomerInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	res, err := a.store.UpsertCustomer(c.UserContext(), in, campaigns.UpsertMeta{
		Actor: principal(c).Name, Source: "api", Rule: campaigns.RuleAPI})
	if err != nil {
		return err
	}
	cu, err := a.store.Customer(c.UserContext(), res.Customer.ID)
	if err != nil {
		return err
	}
	status := fiber.StatusOK
	if res.Outcome == campaigns.Inserted {
		status = fiber.StatusCreated
	}
	return c.Status(status).JSON(fiber.Map{"outcome": res.Outcome, "customer": toCustomerJSON(cu), "warnings": res.Warnings})
}

func (a *App) apiLedger(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	es, err := a.store.Ledger(c.UserContext(), id)
	if err != nil {
		return err
	}
	if es == nil {
		es = []campaigns.LedgerEntry{}
	}
	return c.JSON(fiber.Map{"items": es})
}

func (a *App) apiSetLevel(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	var body struct {
		Level campaigns.Level `json:"level"`
		Note  string          `json:"note"`
	}
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	e, err := a.store.SetLevel(c.UserContext(), id, body.Level, body.Note, principalUser(c))
	if err != nil {
		return err
	}
	cu, err := a.store.Customer(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"customer": toCustomerJSON(cu), "ledger": e})
}

// principalUser is the signed-in user, or a stand-in named after the API token.
func principalUser(c *fiber.Ctx) *campaigns.User {
	p := principal(c)
	if p.User != nil {
		return p.User
	}
	return &campaigns.User{Email: p.Name, Role: p.Role}
}

// apiAudiencePreview counts a filter's audience. With "kind" (and
// "holdout_percent") it adds a forecast from past campaigns.
func (a *App) apiAudiencePreview(c *fiber.Ctx) error {
	var body struct {
		campaigns.Filter
		Kind           campaigns.Kind `json:"kind"`
		HoldoutPercent int            `json:"holdout_percent"`
	}
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	p, err := a.store.PreviewAudience(c.UserContext(), body.Filter, 10)
	if err != nil {
		return err
	}
	sample := make([]customerJSON, len(p.Sample))
	for i := range p.Sample {
		sample[i] = toCustomerJSON(&p.Sample[i])
	}
	out := fiber.Map{"count": p.Count, "sample": sample}
	if body.Kind == campaigns.KindEvent || body.Kind == campaigns.KindGift {
		fc, err := a.store.Forecast(c.UserContext(), body.Kind, body.Filter, body.HoldoutPercent, p.Count)
		if err != nil {
			return err
		}
		out["forecast"] = fc
	}
	return c.JSON(out)
}

// Pages.

func (a *App) customersPage(c *fiber.Ctx) error {
	ctx := c.UserContext()
	q, qerr := customerQuery(c, true)
	var page campaigns.CustomerPage
	var err error
	if qerr == nil {
		page, err = a.store.ListCustomers(ctx, q)
		if err != nil && campaigns.ErrorCode(err) != campaigns.EINVALID {
			return err
		}
		qerr = err
	}
	metros, err := a.store.Metros(ctx)
	if err != nil {
		return err
	}
	selected := map[string]bool{}
	for _, m := range q.Metros {
		selected[campaigns.MetroKey(m)] = true
	}
	levels := map[int]bool{}
	for _, l := range q.Levels {
		levels[int(l)] = true
	}
	if qerr != nil {
		c.Status(fiber.StatusUnprocessableEntity)
	}
	return a.render(c, "pages/customers", fiber.Map{
		"Title": "Customers", "Page": page, "Query": q, "Metros": metros, "SelectedMetros": selected,
		"SelectedLevels": levels, "Ladder": campaigns.Ladder, "FilterError": qerr,
		"MinSpend": c.Query("min_spend"), "MaxSpend": c.Query("max_spend"),
		"PageURL": func(n int, key, cursor string) string { return pageURL(c, n, key, cursor) },
		"SortURL": func(key string) string { return sortURL(c, key) },
	})
}

func (a *App) customerPage(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	cu, err := a.store.Customer(ctx, id)
	if err != nil {
		return err
	}
	ledger, err := a.store.Ledger(ctx, id)
	if err != nil {
		return err
	}
	// Newest first on the page: what changed lately matters most.
	for i, j := 0, len(ledger)-1; i < j; i, j = i+1, j-1 {
		ledger[i], ledger[j] = ledger[j], ledger[i]
	}
	refs, err := a.store.ReferralsBy(ctx, id)
	if err != nil {
		return err
	}
	ltv, orders, err := a.store.LifetimeValue(ctx, id)
	if err != nil {
		return err
	}
	return a.render(c, "pages/customer", fiber.Map{
		"Title": cu.Name, "Customer": cu, "Ledger": ledger, "Ladder": campaigns.Ladder, "Referrals": refs,
		"SourceLink": sourceLink, "LTV": ltv, "Orders": orders,
	})
}

func (a *App) setLevelForm(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	back := "/customers/" + strconv.FormatInt(id, 10)
	l, err := campaigns.ParseLevel(c.FormValue("level"))
	if err != nil {
		return a.redirectWith(c, back, "error", "Level not changed: "+err.Error())
	}
	e, err := a.store.SetLevel(c.UserContext(), id, l, utils.CopyString(c.FormValue("note")), principalUser(c))
	if err != nil {
		if campaigns.ErrorCode(err) == campaigns.EINVALID {
			return a.redirectWith(c, back, "error", "Level not changed: "+err.Error())
		}
		return err
	}
	if e == nil {
		return a.redirectWith(c, back, "ok", "The customer is already at "+l.Name()+"; nothing changed.")
	}
	return a.redirectWith(c, back, "ok", "Level set to "+l.Name()+".")
}

// pageURL is the current list URL for page n, reached from a cursor
// (key "after" or "before") when there is one.
func pageURL(c *fiber.Ctx, n int, key, cursor string) string {
	args := fiber.AcquireArgs()
	defer fiber.ReleaseArgs(args)
	c.Context().QueryArgs().CopyTo(args)
	args.Set("page", strconv.Itoa(n))
	args.Del("after")
	args.Del("before")
	if cursor != "" {
		args.Set(key, cursor)
	}
	return c.Path() + "?" + string(args.QueryString())
}

// sortURL sorts by key, flipping the direction when already sorted by it.
func sortURL(c *fiber.Ctx, key string) string {
	args := fiber.AcquireArgs()
	defer fiber.ReleaseArgs(args)
	c.Context().QueryArgs().CopyTo(args)
	if string(args.Peek("sort")) == key || (key == "name" && len(args.Peek("sort")) == 0) {
		key = "-" + key
	}
	args.Set("sort", key)
	args.Del("page")
	args.Del("after")
	args.Del("before")
	return c.Path() + "?" + string(args.QueryString())
}

// sourceLink links a ledger row's source to what caused it.
func sourceLink(source string) string {
	if id, ok := strings.CutPrefix(source, "campaign:"); ok {
		if _, err := strconv.ParseInt(id, 10, 64); err == nil {
			return "/campaigns/" + id
		}
	}
	return ""
}

package app

import (
	"encoding/csv"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/rapport/rapport/campaigns"
)

func (a *App) apiPurchase(c *fiber.Ctx) error {
	var in campaigns.PurchaseInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	p, created, err := a.store.RecordPurchase(c.UserContext(), in, principal(c).Name)
	if err != nil {
		return err
	}
	status := fiber.StatusOK
	if created {
		status = fiber.StatusCreated
	}
	return c.Status(status).JSON(p)
}

func (a *App) apiAddCost(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	var in campaigns.CostInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	l, err := a.store.AddCost(c.UserContext(), id, in, principal(c).Name)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(l)
}

func (a *App) apiCampaignROI(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	r, err := a.store.CampaignROI(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(r)
}

// reportRange reads from/to (dates or RFC 3339); the default is the last
// quarter: the 90 days up to now.
func reportRange(c *fiber.Ctx) (time.Time, time.Time, error) {
	v := campaigns.Invalid{}
	to := time.Now().UTC().Add(24 * time.Hour)
	from := to.Add(-91 * 24 * time.Hour)
	parse := func(field string, dst *time.Time, endOfDay bool) {
		raw := strings.TrimSpace(c.Query(field))
		if raw == "" {
			return
		}
		if t, err := time.Parse(time.RFC3339, raw); err == nil {
			*dst = t.UTC()
			return
		}
		t, err := time.Parse("2006-01-02", raw)
		if err != nil {
			v.Add(field, "must be a date like 2026-10-01 or an RFC 3339 time")
			return
		}
		if endOfDay {
			t = t.Add(24 * time.Hour)
		}
		*dst = t
	}
	parse("from", &from, false)
	parse("to", &to, true)
	if !to.After(from) {
		v.Add("to", "must be after from")
	}
	return from, to, v.Err()
}

var roiColumns = []string{"campaign_id", "name", "kind", "status", "cost_cents", "revenue_cents", "referred_revenue_cents",
	"naive_roi", "incremental_roi", "incremental_low", "incremental_high", "treated", "holdout", "attendees", "gifts",
	"promotions", "referrals", "nps", "cost_per_attendee_cents", "cost_per_promotion_cents", "cost_per_referral_cents"}

func fnum(p *float64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatFloat(*p, 'f', 4, 64)
}

func inum(p *int64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatInt(*p, 10)
}

func roiRow(r campaigns.ROI) []string {
	return []string{strconv.FormatInt(r.CampaignID, 10), r.Name, string(r.Kind), string(r.Status),
		strconv.FormatInt(r.CostCents, 10), strconv.FormatInt(r.RevenueCents, 10), strconv.FormatInt(r.ReferredRevenueCents, 10),
		fnum(r.NaiveROI), fnum(r.Incremental.ROI), fnum(r.Incremental.Low), fnum(r.Incremental.High),
		strconv.Itoa(r.Incremental.Treated), strconv.Itoa(r.Incremental.Holdout), strconv.FormatInt(r.Attendees, 10),
		strconv.FormatInt(r.Gifts, 10), strconv.FormatInt(r.Promotions, 10), strconv.FormatInt(r.Referrals, 10), fnum(r.NPS),
		inum(r.CostPerAttendeeCents), inum(r.CostPerPromotionCents), inum(r.CostPerReferralCents)}
}

// apiROIReport answers JSON, or CSV with ?format=csv or Accept: text/csv.
func (a *App) apiROIReport(c *fiber.Ctx) error {
	from, to, err := reportRange(c)
	if err != nil {
		return err
	}
	rows, err := a.store.ROIReport(c.UserContext(), from, to)
	if err != nil {
		return err
	}
	if c.Query("format") == "csv" || strings.Contains(c.Get(fiber.HeaderAccept), "text/csv") {
		c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
		c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="rapport-roi-%s-%s.csv"`, from.Format("2006-01-02"), to.Add(-time.Second).Format("2006-01-02")))
		w := csv.NewWriter(c.Response().BodyWriter())
		_ = w.Write(roiColumns)
		for _, r := range rows {
			row := roiRow(r)
			// A cell starting with = + - @ would run as a formula in a spreadsheet.
			if strings.ContainsAny(row[1][:min(1, len(row[1]))], "=+-@") {
				row[1] = "'" + row[1]
			}
			_ = w.Write(row)
		}
		w.Flush()
		return w.Error()
	}
	return c.JSON(fiber.Map{"from": from, "to": to, "items": rows})
}

// chartRows is how many campaigns the chart draws (the first by the sort).
const chartRows = 25

// financePage is the ROI table over a date range, with the chart.
func (a *App) financePage(c *fiber.Ctx) error {
	from, to, rerr := reportRange(c)
	var rows []campaigns.ROI
	// The total is each purchase once: the rows' revenue does not add up,
	// as one order can be the return of two campaigns.
	var cost, revenue int64
	if rerr == nil {
		var err error
		if rows, revenue, err = a.store.ROIReportWithTotal(c.UserContext(), from, to); err != nil {
			return err
		}
	} else {
		c.Status(fiber.StatusUnprocessableEntity)
	}
	sortKey := utils.CopyString(c.Query("sort", "-revenue"))
	sortROI(rows, sortKey)
	for _, r := range rows {
		cost += r.CostCents
	}
	return a.render(c, "pages/finance", fiber.Map{"Title": "Return on investment", "Rows": rows, "From": from.Format("2006-01-02"),
		"To": to.Add(-time.Second).Format("2006-01-02"), "RangeError": rerr, "Chart": roiChart(rows[:min(len(rows), chartRows)]),
		"ChartRows": chartRows, "Sort": sortKey,
		"TotalCost": cost, "TotalRevenue": revenue, "CSV": "/api/v1/reports/roi?format=csv&from=" + from.Format("2006-01-02") +
			"&to=" + to.Add(-time.Second).Format("2006-01-02")})
}

func sortROI(rows []campaigns.ROI, key string) {
	desc := strings.HasPrefix(key, "-")
	k := strings.TrimPrefix(key, "-")
	val := func(r campaigns.ROI) float64 {
		f := func(p *float64) float64 {
			if p == nil {
				return -1e18
			}
			return *p
		}
		switch k {
		case "cost":
			return float64(r.CostCents)
		case "naive":
			return f(r.NaiveROI)
		case "incremental":
			return f(r.Incremental.ROI)
		case "attendees":
			return float64(r.Attendees + r.Gifts)
		case "promotions":
			return float64(r.Promotions)
		case "nps":
			return f(r.NPS)
		}
		return float64(r.RevenueCents)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if desc {
			return val(rows[i]) > val(rows[j])
		}
		return val(rows[i]) < val(rows[j])
	})
}

func (a *App) addCostForm(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	back := "/campaigns/" + strconv.FormatInt(id, 10) + "#costs"
	cents, err := campaigns.ParseMoney(c.FormValue("amount"))
	if err != nil {
		return a.redirectWith(c, back, "error", "Cost not added: amount: "+err.Error())
	}
	_, err = a.store.AddCost(c.UserContext(), id, campaigns.CostInput{Category: utils.CopyString(c.FormValue("category")),
		AmountCents: &cents, Per: utils.CopyString(c.FormValue("per")), Note: utils.CopyString(c.FormValue("note"))}, principal(c).Name)
	if err != nil {
		if campaigns.ErrorCode(err) == campaigns.EINVALID {
			return a.redirectWith(c, back, "error", "Cost not added: "+err.Error())
		}
		return err
	}
	return a.redirectWith(c, back, "ok", "Cost added.")
}

func (a *App) removeCostForm(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	line, err := strconv.ParseInt(c.Params("line"), 10, 64)
	if err != nil {
		return campaigns.Errorf(campaigns.ENOTFOUND, "no such cost line")
	}
	if err := a.store.RemoveCost(c.UserContext(), id, line, principal(c).Name); err != nil {
		return err
	}
	return a.redirectWith(c, "/campaigns/"+strconv.FormatInt(id, 10)+"#costs", "ok", "Cost removed (kept in the history).")
}

// auditPage is the relationship audit: where customers stand, who is
// drifting, what they say.
func (a *App) auditPage(c *fiber.Ctx) error {
	au, err := a.store.RelationshipAudit(c.UserContext())
	if err != nil {
		return err
	}
	return a.render(c, "pages/audit", fiber.Map{"Title": "Relationship audit", "A": au})
}

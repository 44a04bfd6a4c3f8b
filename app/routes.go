package app

import "github.com/gofiber/fiber/v2"

// Route is one endpoint and the permission it needs.
type Route struct {
	Method  string
	Path    string
	Perm    Permission
	Handler fiber.Handler
	Upload  bool // accepts a large body (CSV upload)
}

// routes is every endpoint of Rapport, pages and API, in one table. The
// role test in routes_test.go walks it against every role.
func (a *App) routes() []Route {
	return []Route{
		// Sign-in.
		{"GET", "/login", PermPublic, a.loginPage, false},
		{"POST", "/login", PermPublic, a.login, false},
		{"POST", "/logout", PermSignedIn, a.logout, false},
		{"GET", "/", PermSignedIn, a.home, false},

		// Customers.
		{"GET", "/customers", PermCustomersRead, a.customersPage, false},
		{"GET", "/customers/:id", PermCustomersRead, a.customerPage, false},
		{"POST", "/customers/:id/level", PermCustomersWrite, a.setLevelForm, false},
		{"POST", "/customers/:id/referrals", PermReferrals, a.referralForm, false},
		{"GET", "/import", PermCustomersWrite, a.importPage, false},
		{"POST", "/import", PermCustomersWrite, a.importUpload, true},
		{"GET", "/imports/:id", PermCustomersWrite, a.importStatusPage, false},
		{"GET", "/imports/:id/status.json", PermCustomersWrite, a.importStatusJSON, false},

		// Administration.
		{"GET", "/users", PermUsersManage, a.usersPage, false},
		{"POST", "/users", PermUsersManage, a.createUserForm, false},
		{"POST", "/users/:id", PermUsersManage, a.updateUserForm, false},
		{"POST", "/users/:id/password", PermUsersManage, a.resetPasswordForm, false},
		{"POST", "/tokens", PermUsersManage, a.createTokenForm, false},
		{"POST", "/tokens/:id/revoke", PermUsersManage, a.revokeTokenForm, false},

		// Campaigns.
		{"GET", "/campaigns", PermCampaignsRead, a.campaignsPage, false},
		{"GET", "/campaigns/new", PermCampaignsWrite, a.newCampaignPage, false},
		{"POST", "/campaigns", PermCampaignsWrite, a.createCampaignForm, false},
		{"GET", "/campaigns/:id", PermCampaignsRead, a.campaignPage, false},
		{"POST", "/campaigns/:id/schedule", PermCampaignsWrite, a.scheduleForm, false},
		{"POST", "/campaigns/:id/pause", PermCampaignsWrite, a.lifecycleForm("pause"), false},
		{"POST", "/campaigns/:id/resume", PermCampaignsWrite, a.lifecycleForm("resume"), false},
		{"POST", "/campaigns/:id/cancel", PermCampaignsWrite, a.lifecycleForm("cancel"), false},
		{"POST", "/campaigns/:id/close", PermCampaignsWrite, a.lifecycleForm("close"), false},
		{"POST", "/campaigns/:id/unschedule", PermCampaignsWrite, a.lifecycleForm("unschedule"), false},
		{"POST", "/campaigns/:id/gift-codes", PermCampaignsWrite, a.giftCodesUpload, true},
		{"POST", "/campaigns/:id/event", PermCampaignsWrite, a.updateEventForm, false},
		{"POST", "/campaigns/:id/rules", PermCampaignsWrite, a.rulesForm, false},
		{"GET", "/campaigns/:id/checkin", PermCheckin, a.checkinPage, false},
		{"GET", "/campaigns/:id/checkin/search", PermCheckin, a.checkinSearch, false},
		{"POST", "/campaigns/:id/checkin", PermCheckin, a.checkinForm, false},
		{"POST", "/campaigns/:id/checkin/undo", PermCheckin, a.undoCheckinForm, false},
		{"GET", "/c/:token", PermCheckin, a.qrCheckinPage, false},
		{"POST", "/c/:token", PermCheckin, a.qrCheckin, false},
		{"GET", "/finance", PermFinance, a.financePage, false},
		{"GET", "/audit", PermFinance, a.auditPage, false},
		{"GET", "/followups", PermCheckin, a.followupsPage, false},
		{"POST", "/followups/:id/done", PermCheckin, a.followedUpForm, false},
		{"POST", "/campaigns/:id/costs", PermFinance, a.addCostForm, false},
		{"POST", "/campaigns/:id/costs/:line/remove", PermFinance, a.removeCostForm, false},
		{"GET", "/outbox", PermOutboxRead, a.outboxPage, false},
		{"GET", "/outbox/:id", PermOutboxRead, a.outboxMessagePage, false},
		{"GET", "/outbox/:id/body.html", PermOutboxRead, a.outboxMessageHTML, false},

		// Public links from emails, and SendGrid's signed webhook.
		{"GET", "/r/:token", PermPublic, a.rsvpPage, false},
		{"POST", "/r/:token", PermPublic, a.rsvpAnswer, false},
		{"GET", "/r/:token/event.ics", PermPublic, a.rsvpCalendar, false},
		{"GET", "/s/:token", PermPublic, a.surveyPage, false},
		{"POST", "/s/:token", PermPublic, a.surveyComment, false},
		{"GET", "/u/:token", PermPublic, a.unsubscribePage, false},
		{"POST", "/u/:token", PermPublic, a.unsubscribe, false},
		{"GET", "/q/:token.png", PermPublic, a.qrImage, false},
		{"POST", "/webhooks/sendgrid", PermPublic, a.sendgridWebhook, true},

		// JSON API.
		{"GET", "/api/v1/customers", PermCustomersRead, a.apiListCustomers, false},
		{"POST", "/api/v1/customers", PermCustomersWrite, a.apiUpsertCustomer, false},
		{"GET", "/api/v1/customers/:id", PermCustomersRead, a.apiCustomer, false},
		{"GET", "/api/v1/customers/:id/ledger", PermCustomersRead, a.apiLedger, false},
		{"POST", "/api/v1/customers/:id/level", PermCustomersWrite, a.apiSetLevel, false},
		{"POST", "/api/v1/audience/preview", PermAudiencePreview, a.apiAudiencePreview, false},
		{"GET", "/api/v1/campaigns", PermCampaignsRead, a.apiListCampaigns, false},
		{"POST", "/api/v1/campaigns", PermCampaignsWrite, a.apiCreateCampaign, false},
		{"GET", "/api/v1/campaigns/:id", PermCampaignsRead, a.apiCampaign, false},
		{"POST", "/api/v1/campaigns/:id/schedule", PermCampaignsWrite, a.apiSchedule, false},
		{"POST", "/api/v1/campaigns/:id/cancel", PermCampaignsWrite, a.apiLifecycle("cancel"), false},
		{"POST", "/api/v1/campaigns/:id/pause", PermCampaignsWrite, a.apiLifecycle("pause"), false},
		{"POST", "/api/v1/campaigns/:id/resume", PermCampaignsWrite, a.apiLifecycle("resume"), false},
		{"POST", "/api/v1/campaigns/:id/close", PermCampaignsWrite, a.apiLifecycle("close"), false},
		{"GET", "/api/v1/campaigns/:id/invitations", PermCampaignsRead, a.apiInvitations, false},
		{"POST", "/api/v1/campaigns/:id/gift-codes", PermCampaignsWrite, a.apiGiftCodes, false},
		{"POST", "/api/v1/campaigns/:id/checkins", PermCheckin, a.apiCheckin, false},
		{"PATCH", "/api/v1/campaigns/:id/event", PermCampaignsWrite, a.apiUpdateEvent, false},
		{"PUT", "/api/v1/campaigns/:id/rules", PermCampaignsWrite, a.apiSetRules, false},
		{"POST", "/api/v1/referrals", PermReferrals, a.apiReferral, false},
		{"POST", "/api/v1/purchases", PermFinance, a.apiPurchase, false},
		{"POST", "/api/v1/campaigns/:id/costs", PermFinance, a.apiAddCost, false},
		{"GET", "/api/v1/campaigns/:id/roi", PermFinance, a.apiCampaignROI, false},
		{"GET", "/api/v1/reports/roi", PermFinance, a.apiROIReport, false},
	}
}

func (a *App) register(f *fiber.App) {
	a.routes_ = a.routes()
	for _, r := range a.routes_ {
		handlers := []fiber.Handler{a.require(r.Perm)}
		if r.Method == fiber.MethodPost && r.Path == "/login" {
			handlers = append(handlers, a.loginLimiter())
		}
		if !r.Upload {
			handlers = append(handlers, limitBody(maxBodyBytes))
		}
		f.Add(r.Method, r.Path, append(handlers, r.Handler)...)
	}
}

// limitBody refuses bodies over n bytes with 413.
func limitBody(n int) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if cl := c.Request().Header.ContentLength(); cl > n || (cl < 0 && len(c.Body()) > n) {
			return fiber.NewError(fiber.StatusRequestEntityTooLarge, "the request body is too large")
		}
		return c.Next()
	}
}

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

		// JSON API.
		{"GET", "/api/v1/customers", PermCustomersRead, a.apiListCustomers, false},
		{"POST", "/api/v1/customers", PermCustomersWrite, a.apiUpsertCustomer, false},
		{"GET", "/api/v1/customers/:id", PermCustomersRead, a.apiCustomer, false},
		{"GET", "/api/v1/customers/:id/ledger", PermCustomersRead, a.apiLedger, false},
		{"POST", "/api/v1/customers/:id/level", PermCustomersWrite, a.apiSetLevel, false},
		{"POST", "/api/v1/audience/preview", PermAudiencePreview, a.apiAudiencePreview, false},
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

package app

import "github.com/rapport/rapport/campaigns"

// Permission names something a user may do. Every route declares one; the
// matrix below is the only place that says which roles hold which.
type Permission string

const (
	// PermPublic routes need no sign-in (sign-in page, RSVP, unsubscribe).
	PermPublic Permission = "public"
	// PermSignedIn routes need any signed-in user (sign out, own session).
	PermSignedIn        Permission = "signed_in"
	PermCustomersRead   Permission = "customers:read"
	PermCustomersWrite  Permission = "customers:write" // upsert, import, set a level
	PermAudiencePreview Permission = "audience:preview"
	PermUsersManage     Permission = "users:manage" // users and API tokens
	PermCampaignsRead   Permission = "campaigns:read"
	PermCampaignsWrite  Permission = "campaigns:write" // create, schedule, pause, cancel, gift codes
	PermOutboxRead      Permission = "outbox:read"
	PermCheckin         Permission = "checkin"   // the door: check guests in, add walk-ins
	PermReferrals       Permission = "referrals" // record "A referred B"
	PermFinance         Permission = "finance"   // costs, purchases, ROI
)

var (
	admin       = campaigns.RoleAdmin
	coordinator = campaigns.RoleCoordinator
	rep         = campaigns.RoleRep
	finance     = campaigns.RoleFinance
)

// matrix is the role matrix. A role not listed for a permission is denied.
var matrix = map[Permission][]campaigns.Role{
	PermSignedIn:        {admin, coordinator, rep, finance},
	PermCustomersRead:   {admin, coordinator, rep, finance},
	PermCustomersWrite:  {admin, coordinator},
	PermAudiencePreview: {admin, coordinator},
	PermUsersManage:     {admin},
	PermCampaignsRead:   {admin, coordinator, rep, finance},
	PermCampaignsWrite:  {admin, coordinator},
	PermOutboxRead:      {admin, coordinator},
	PermCheckin:         {admin, coordinator, rep},
	PermReferrals:       {admin, coordinator, rep},
	PermFinance:         {admin, coordinator, finance},
}

// Allowed reports whether role holds perm.
func Allowed(role campaigns.Role, perm Permission) bool {
	if perm == PermPublic {
		return true
	}
	for _, r := range matrix[perm] {
		if r == role {
			return true
		}
	}
	return false
}

package campaigns

import (
	"context"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Kinds of public token, each a link in an email that works without
// signing in.
const (
	TokenRSVP        = "rsvp"
	TokenUnsubscribe = "unsubscribe"
	TokenSurvey      = "survey"
	TokenCheckin     = "checkin"
)

// tokenLifetime is how long a link keeps working. Unsubscribe links must
// work for at least a year (CAN-SPAM asks 30 days; people keep old mail).
func tokenLifetime(kind string) time.Duration {
	switch kind {
	case TokenUnsubscribe:
		return 2 * 365 * 24 * time.Hour
	default:
		return 400 * 24 * time.Hour
	}
}

// PublicToken is what a link names. An email's links are one link set now
// (links.go); those sent before were one row each, and still work.
type PublicToken struct {
	TokenHash    string `gorm:"primaryKey"`
	Kind         string
	InvitationID *int64
	CustomerID   int64
	CreatedAt    time.Time
	ExpiresAt    time.Time
}

// ResolveToken finds the live token of kind that plain names. Unknown,
// expired, malformed and wrong-kind tokens are all the same not-found, so
// a link gives nothing away about others.
func (s *Store) ResolveToken(ctx context.Context, kind, plain string) (*PublicToken, error) {
	return s.resolveTokenTx(s.db.WithContext(ctx), kind, plain)
}

func (s *Store) resolveTokenTx(db *gorm.DB, kind, plain string) (*PublicToken, error) {
	nf := badLink()
	plain = strings.TrimSpace(plain)
	if len(plain) < 26 || len(plain) > 64 {
		return nil, nf
	}
	if l, ok := parseLink(kind, plain); ok {
		var r struct {
			InvitationID, CustomerID int64
			CreatedAt                time.Time
		}
		res := db.Raw(`SELECT i.id AS invitation_id, i.customer_id, ls.created_at FROM link_sets ls
			JOIN invitations i ON i.id = ls.invitation_id
			WHERE ls.id = ? AND ls.`+l.column+` = ? AND ls.created_at > ?`, l.setID, l.hash, s.now().Add(-tokenLifetime(kind))).Scan(&r)
		if res.Error != nil {
			return nil, res.Error
		}
		if res.RowsAffected == 0 {
			return nil, nf
		}
		return &PublicToken{Kind: kind, InvitationID: &r.InvitationID, CustomerID: r.CustomerID,
			CreatedAt: r.CreatedAt, ExpiresAt: r.CreatedAt.Add(tokenLifetime(kind))}, nil
	}
	var t PublicToken
	err := db.Where("token_hash = ? AND kind = ? AND expires_at > ?", HashSecret(plain), kind, s.now()).Take(&t).Error
	if err != nil {
		if ErrorCode(notFound(err, "", "")) == ENOTFOUND {
			return nil, nf
		}
		return nil, err
	}
	return &t, nil
}

// Unsubscribe records a customer's opt-out from a link (page or one-click
// POST): consent unsubscribed, with when and from which campaign. Repeating
// it changes nothing.
func (s *Store) Unsubscribe(ctx context.Context, plain, how string) (*Customer, error) {
	t, err := s.ResolveToken(ctx, TokenUnsubscribe, plain)
	if err != nil {
		return nil, err
	}
	c, err := s.Customer(ctx, t.CustomerID)
	if err != nil {
		return nil, err
	}
	if c.ConsentState == Subscribed {
		reason := how
		if t.InvitationID != nil {
			var inv Invitation
			if err := s.db.WithContext(ctx).Take(&inv, *t.InvitationID).Error; err == nil {
				reason += " from campaign " + itoa(inv.CampaignID)
			}
		}
		if err := s.SetConsent(ctx, c.ID, Unsubscribed, reason); err != nil {
			return nil, err
		}
		return s.Customer(ctx, c.ID)
	}
	return c, nil
}

// badLink is every bad link's answer: unknown, expired, malformed, for
// another purpose or forged, a link gives nothing away about others.
func badLink() *Error {
	return Errorf(ENOTFOUND, "this link is not valid; it may have been mistyped or cut short")
}

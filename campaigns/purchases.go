package campaigns

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/rapport/rapport/config"
)

// Purchase is one order by a customer.
type Purchase struct {
	ID          int64     `json:"id"`
	ExternalID  string    `json:"external_id"`
	CustomerID  int64     `json:"customer_id"`
	AmountCents int64     `json:"amount_cents"`
	PurchasedAt time.Time `json:"purchased_at"`
	CreatedBy   string    `json:"-"`
	CreatedAt   time.Time `json:"-"`
}

// PurchaseInput is POST /api/v1/purchases (customer_email may stand for
// customer_id, customer_external_id too).
type PurchaseInput struct {
	ExternalID         string     `json:"external_id"`
	CustomerID         int64      `json:"customer_id"`
	CustomerEmail      string     `json:"customer_email"`
	CustomerExternalID string     `json:"customer_external_id"`
	AmountCents        *int64     `json:"amount_cents"`
	PurchasedAt        *time.Time `json:"purchased_at"`
}

// RecordPurchase stores a purchase once: the same external_id again
// changes nothing (created is false). A purchase credits the ladder: the
// first at least Customer, purchases on two or more days at least Good
// customer.
func (s *Store) RecordPurchase(ctx context.Context, in PurchaseInput, by string) (*Purchase, bool, error) {
	var out *Purchase
	created := false
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var err error
		out, created, err = s.recordPurchase(tx, in, by)
		return err
	})
	return out, created, err
}

func (s *Store) recordPurchase(tx *gorm.DB, in PurchaseInput, by string) (*Purchase, bool, error) {
	v := Invalid{}
	in.ExternalID = strings.TrimSpace(in.ExternalID)
	if in.ExternalID == "" {
		v.Add("external_id", "is required (the order number)")
	} else if len(in.ExternalID) > 100 {
		v.Add("external_id", "is longer than 100 characters")
	}
	if in.AmountCents == nil {
		v.Add("amount_cents", "is required")
	} else if *in.AmountCents < 0 {
		v.Add("amount_cents", "must not be negative")
	}
	if in.PurchasedAt == nil {
		v.Add("purchased_at", "is required (RFC 3339)")
	} else if in.PurchasedAt.After(s.now().Add(24 * time.Hour)) {
		v.Add("purchased_at", "is in the future")
	}
	var cu Customer
	var err error
	switch {
	case in.CustomerID != 0:
		err = tx.Select("id, level").Take(&cu, in.CustomerID).Error
	case strings.TrimSpace(in.CustomerExternalID) != "":
		err = tx.Select("id, level").Where("external_id = ?", strings.TrimSpace(in.CustomerExternalID)).Take(&cu).Error
	case strings.TrimSpace(in.CustomerEmail) != "":
		err = tx.Select("id, level").Where("email = ?", strings.ToLower(strings.TrimSpace(in.CustomerEmail))).Take(&cu).Error
	default:
		v.Add("customer_id", "is required (or customer_email, or customer_external_id)")
	}
	if errors.Is(err, gorm.ErrRecordNotFound) {
		v.Add("customer_id", "no such customer")
	} else if err != nil {
		return nil, false, err
	}
	if err := v.Err(); err != nil {
		return nil, false, err
	}
	var existing Purchase
	if err := tx.Where("external_id = ?", in.ExternalID).Take(&existing).Error; err == nil {
		if existing.CustomerID != cu.ID || existing.AmountCents != *in.AmountCents {
			return nil, false, &Error{Code: ECONFLICT, Message: "this order number was recorded with other details",
				Fields: map[string]string{"external_id": "already recorded for another customer or amount"}}
		}
		return &existing, false, nil
	}
	p := &Purchase{ExternalID: in.ExternalID, CustomerID: cu.ID, AmountCents: *in.AmountCents,
		PurchasedAt: in.PurchasedAt.UTC(), CreatedBy: by, CreatedAt: s.now()}
	res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(p)
	if res.Error != nil {
		return nil, false, res.Error
	}
	if res.RowsAffected == 0 { // another process recorded it a moment ago
		if err := tx.Where("external_id = ?", in.ExternalID).Take(p).Error; err != nil {
			return nil, false, err
		}
		return p, false, nil
	}
	// Ladder: first purchase, and purchases on two or more separate days:
	// UTC dates on both databases (a plain CAST took the PostgreSQL
	// session's zone). Rapport knows no business or customer zone to count
	// local days in.
	day := "CAST(purchased_at AT TIME ZONE 'UTC' AS DATE)"
	if s.dialect != config.Postgres {
		day = "substr(purchased_at, 1, 10)" // stored as UTC text: the date comes first
	}
	var days int64
	if err := tx.Model(&Purchase{}).Where("customer_id = ?", cu.ID).
		Select("count(DISTINCT " + day + ")").Scan(&days).Error; err != nil {
		return nil, false, err
	}
	for _, r := range DefaultRules {
		if r.Trigger == TriggerPurchase || (r.Trigger == TriggerRepeat && days >= 2) {
			r := r
			if _, err := s.applyLevelChange(tx, LevelChange{CustomerID: cu.ID, Rule: r.Name, Source: "purchases",
				Actor: by, Once: true, Target: r.Target}); err != nil {
				return nil, false, err
			}
		}
	}
	return p, true, nil
}

// LifetimeValue is the sum of a customer's purchases, and their count.
func (s *Store) LifetimeValue(ctx context.Context, customerID int64) (int64, int64, error) {
	var r struct {
		Sum int64
		N   int64
	}
	err := s.db.WithContext(ctx).Model(&Purchase{}).Where("customer_id = ?", customerID).
		Select("coalesce(sum(amount_cents), 0) AS sum, count(*) AS n").Scan(&r).Error
	return r.Sum, r.N, err
}

// PurchaseImportResult is what a purchases import did.
type PurchaseImportResult struct {
	Rows, Inserted, Existing, Rejected int
	Problems                           []RowProblem
}

// ImportPurchases reads a purchases CSV (external_id, customer_email or
// customer_external_id, amount, purchased_at): each row in its own
// transaction, idempotent on external_id, bad rows named.
func (s *Store) ImportPurchases(ctx context.Context, r io.Reader, by string) (*PurchaseImportResult, error) {
	head := make([]byte, 4096)
	n, _ := io.ReadFull(r, head)
	head = head[:n]
	if err := looksLikeText(head); err != nil {
		return nil, err
	}
	cr := csv.NewReader(io.MultiReader(strings.NewReader(string(head)), r))
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: cannot read a header row: %v", ErrNotCSV, err)
	}
	cols := map[string]int{}
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff")
		}
		cols[strings.ToLower(strings.TrimSpace(h))] = i
	}
	_, hasEmail := cols["customer_email"]
	_, hasExt := cols["customer_external_id"]
	for _, need := range []string{"external_id", "amount", "purchased_at"} {
		if _, ok := cols[need]; !ok || (!hasEmail && !hasExt) {
			return nil, fmt.Errorf("%w: no recognisable header (expected external_id, customer_email or customer_external_id, amount, purchased_at; found %s)",
				ErrNotCSV, strings.Join(header, ", "))
		}
	}
	res := &PurchaseImportResult{}
	get := func(rec []string, c string) string {
		if i, ok := cols[c]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	for row := 2; ; row++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		res.Rows++
		if err != nil {
			res.Rejected++
			res.Problems = append(res.Problems, RowProblem{Row: row, Reason: "malformed CSV: " + err.Error()})
			continue
		}
		in := PurchaseInput{ExternalID: get(rec, "external_id"), CustomerEmail: get(rec, "customer_email"),
			CustomerExternalID: get(rec, "customer_external_id")}
		var probs []RowProblem
		if c, err := ParseMoney(get(rec, "amount")); err != nil {
			probs = append(probs, RowProblem{Row: row, Field: "amount", Reason: err.Error()})
		} else {
			in.AmountCents = &c
		}
		if t, err := parsePurchaseTime(get(rec, "purchased_at")); err != nil {
			probs = append(probs, RowProblem{Row: row, Field: "purchased_at", Reason: err.Error()})
		} else {
			in.PurchasedAt = &t
		}
		if len(probs) > 0 {
			res.Rejected++
			res.Problems = append(res.Problems, probs...)
			continue
		}
		_, created, err := s.RecordPurchase(ctx, in, by)
		switch {
		case err == nil && created:
			res.Inserted++
		case err == nil:
			res.Existing++
		default:
			var de *Error
			if !errors.As(err, &de) {
				return res, fmt.Errorf("row %d: %w", row, err)
			}
			res.Rejected++
			res.Problems = append(res.Problems, problemsOf(row, err)...)
		}
	}
	return res, nil
}

func parsePurchaseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time like 2026-10-08T09:00:00Z or 2026-10-08", s)
}

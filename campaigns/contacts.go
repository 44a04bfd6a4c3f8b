package campaigns

import (
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// When Rapport last contacted each customer is kept in customer_contacts,
// a narrow table of its own (migration 00010 says why); a customer never
// contacted has no row. Customer.LastContactedAt is read from it.

// customerContact is one row of customer_contacts.
type customerContact struct {
	CustomerID      int64 `gorm:"primaryKey"`
	LastContactedAt time.Time
}

func (customerContact) TableName() string { return "customer_contacts" }

// notContactedSince is the SQL condition, over customers, for "not contacted
// at or after ?".
const notContactedSince = `NOT EXISTS (SELECT 1 FROM customer_contacts cc
	WHERE cc.customer_id = customers.id AND cc.last_contacted_at >= ?)`

// recordContacts sets the last contact of the customers of a settled batch
// (rows ids of queue q with batch_id) to now. Rows are written in customer
// order, so two batches sharing customers lock them in the same order.
func recordContacts(tx *gorm.DB, q Queue, batchID, in string, arg any, now time.Time) error {
	return tx.Exec(`INSERT INTO customer_contacts (customer_id, last_contacted_at)
		SELECT customer_id, ? FROM `+string(q)+` WHERE batch_id = ? AND `+in+` GROUP BY customer_id ORDER BY customer_id
		ON CONFLICT (customer_id) DO UPDATE SET last_contacted_at = excluded.last_contacted_at
		WHERE excluded.last_contacted_at > customer_contacts.last_contacted_at`, now, batchID, arg).Error
}

// insertContacts writes last contacts known from elsewhere (seeded history).
func insertContacts(tx *gorm.DB, cs []*Customer) error {
	var rows []customerContact
	for _, c := range cs {
		if c.LastContactedAt != nil {
			rows = append(rows, customerContact{CustomerID: c.ID, LastContactedAt: *c.LastContactedAt})
		}
	}
	if len(rows) == 0 {
		return nil
	}
	return tx.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, 1000).Error
}

// fillContacts sets LastContactedAt on customers read from the customers
// table: one query for the lot.
func fillContacts(db *gorm.DB, cs []Customer) error {
	if len(cs) == 0 {
		return nil
	}
	ids := make([]int64, len(cs))
	for i := range cs {
		ids[i] = cs[i].ID
	}
	in, arg := idsIn(db, "customer_id", ids)
	var rows []customerContact
	if err := db.Where(in, arg).Find(&rows).Error; err != nil {
		return err
	}
	at := make(map[int64]time.Time, len(rows))
	for _, r := range rows {
		at[r.CustomerID] = r.LastContactedAt
	}
	for i := range cs {
		if t, ok := at[cs[i].ID]; ok {
			cs[i].LastContactedAt = &t
		} else {
			cs[i].LastContactedAt = nil
		}
	}
	return nil
}

package campaigns

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/rapport/rapport/config"
)

// InvitationStatus is where one email is.
type InvitationStatus string

const (
	InvPending    InvitationStatus = "pending"
	InvSending    InvitationStatus = "sending" // claimed by a worker under a lease
	InvSent       InvitationStatus = "sent"
	InvDelivered  InvitationStatus = "delivered"
	InvFailed     InvitationStatus = "failed"
	InvSuppressed InvitationStatus = "suppressed"
)

// Invitation is one audience member of a campaign: contacted, or held out.
type Invitation struct {
	ID           int64            `json:"id"`
	CampaignID   int64            `json:"campaign_id"`
	CustomerID   int64            `json:"customer_id"`
	Email        string           `json:"email"`
	Run          int              `json:"run"`
	Holdout      bool             `json:"holdout"`
	Status       InvitationStatus `json:"status"`
	Uncertain    bool             `json:"uncertain,omitempty"`
	Attempts     int              `json:"attempts"`
	LeaseOwner   *string          `json:"-"`
	LeaseUntil   *time.Time       `json:"-"`
	BatchID      *string          `json:"-"`
	CancelBy     *time.Time       `json:"-"`
	MessageID    *string          `json:"-"`
	StatusReason string           `json:"status_reason,omitempty"`
	SentAt       *time.Time       `json:"sent_at"`
	DeliveredAt  *time.Time       `json:"delivered_at"`
	OpenedAt     *time.Time       `json:"opened_at,omitempty"`
	ClickedAt    *time.Time       `json:"clicked_at,omitempty"`
	RSVP         string           `json:"rsvp" gorm:"column:rsvp"`
	Guests       int              `json:"guests"`
	Attended     bool             `json:"attended"`
	CheckedInAt  *time.Time       `json:"checked_in_at"`
	CheckedInBy  string           `json:"-"`
	WalkIn       bool             `json:"walk_in,omitempty"`
	RSVPAt       *time.Time       `json:"rsvp_at,omitempty" gorm:"column:rsvp_at"`
	WaitlistSeq  *int64           `json:"-"`
	NPSScore     *int             `json:"nps_score,omitempty" gorm:"column:nps_score"`
	NPSAt        *time.Time       `json:"-" gorm:"column:nps_at"`
	NPSComment   string           `json:"-" gorm:"column:nps_comment"`
	FollowedUpAt *time.Time       `json:"-"`
	FollowedUpBy string           `json:"-"`
	CreatedAt    time.Time        `json:"created_at"`
	UpdatedAt    time.Time        `json:"updated_at"`
}

// Queue names a table of sends with the claim/lease/recall columns:
// first invitations, and follow-ups (reminders, seats, updates).
type Queue string

const (
	QueueInvitations Queue = "invitations"
	QueueFollowups   Queue = "followups"
)

// holdoutSize is how many of n are held out at pct percent (rounded).
func holdoutSize(n int64, pct int) int64 { return (n*int64(pct) + 50) / 100 }

// StartResult says what starting a campaign run did.
type StartResult struct {
	Started bool  // this process won the race to start it
	Frozen  int64 // invitations created by this run
	Holdout int64
}

// Start moves a due campaign from scheduled to sending and freezes its
// audience, in one transaction: the conditional UPDATE lets exactly one
// process win; invitations are created by one INSERT … SELECT with a unique
// (campaign, customer) key, so a standing campaign's later runs add only
// customers who newly qualify; the holdout is drawn from a seeded shuffle.
func (s *Store) Start(ctx context.Context, id int64) (StartResult, error) {
	var res StartResult
	var short error
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var c Campaign
		q := tx
		if s.dialect == config.Postgres {
			// FOR UPDATE, where the transition alone would take FOR NO KEY
			// UPDATE: a walk-in being written (its foreign key holds KEY
			// SHARE on the event) is waited for and seen by the freeze
			// below, and later ones wait for the freeze.
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		if err := q.Take(&c, id).Error; err != nil {
			return notFound(err, "campaign", id)
		}
		now := s.now()
		ok, err := s.transition(tx, id, []Status{StatusScheduled}, StatusSending,
			map[string]any{"runs": gorm.Expr("runs + 1"), "last_run_at": now})
		if err != nil || !ok {
			return err
		}
		res.Started = true
		run := c.Runs + 1
		sub := c.Filter().apply(tx.Model(&Customer{}), now).
			Select("?, id, email, ?, ?, 'pending', 0, 'none', 0, ?, ?, ?", c.ID, run, false, false, now, now).
			// In customer order, so that each claim (by invitation id) reads
			// customers' rows and writes their contacts in runs of
			// neighbouring pages rather than at random across the table.
			Order("customers.id")
		// Customers already invited by an earlier run (or met at the door
		// as walk-ins) are skipped by the unique (campaign, customer) key:
		// ON CONFLICT DO NOTHING. (A NOT EXISTS here made PostgreSQL scan
		// the growing table per row.) A campaign with no invitation yet,
		// its first run, has nothing to skip, and a plain INSERT spares
		// each row ON CONFLICT's speculative insertion: 1.53-1.63 ->
		// 1.03-1.13 s for 100,000 rows (EXPLAIN ANALYZE, slow hour).
		var earlier bool
		if err := tx.Raw("SELECT EXISTS (SELECT 1 FROM invitations WHERE campaign_id = ?)", c.ID).Scan(&earlier).Error; err != nil {
			return err
		}
		onConflict := ""
		if earlier {
			onConflict = " ON CONFLICT DO NOTHING"
		}
		ins := tx.Exec("INSERT INTO invitations (campaign_id, customer_id, email, run, holdout, status, attempts, rsvp, guests, attended, created_at, updated_at) ?"+onConflict, sub)
		if ins.Error != nil {
			return ins.Error
		}
		res.Frozen = ins.RowsAffected
		if res.Holdout, err = s.drawHoldout(tx, &c, run); err != nil {
			return err
		}
		if c.Kind == KindGift && c.Fulfilment == "codes" {
			need := res.Frozen - res.Holdout
			var have int64
			if err := tx.Model(&GiftCode{}).Where("campaign_id = ? AND invitation_id IS NULL", c.ID).Count(&have).Error; err != nil {
				return err
			}
			if have < need {
				short = fmt.Errorf("not enough gift codes to start: %d recipients, %d codes available; add %d more, then resume", need, have, need-have)
				return short
			}
		}
		return nil
	})
	if short != nil {
		_, err := s.transition(s.db.WithContext(ctx), id, []Status{StatusScheduled}, StatusPaused, map[string]any{"status_note": short.Error()})
		return StartResult{}, err
	}
	return res, err
}

// drawHoldout marks a reproducible random pct of the run's audience as
// holdout: the same seed and audience always give the same draw. Walk-ins
// are not drawn: met at the door before the start, they carry the first
// run's number, but they were never part of an audience to hold out.
func (s *Store) drawHoldout(tx *gorm.DB, c *Campaign, run int) (int64, error) {
	if c.HoldoutPercent == 0 {
		return 0, nil
	}
	var ids []int64
	if err := tx.Model(&Invitation{}).Where("campaign_id = ? AND run = ? AND NOT walk_in", c.ID, run).
		Order("customer_id").Pluck("id", &ids).Error; err != nil {
		return 0, err
	}
	k := holdoutSize(int64(len(ids)), c.HoldoutPercent)
	rng := rand.New(rand.NewPCG(uint64(c.HoldoutSeed), uint64(run)))
	rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	chosen := ids[:k]
	sort.Slice(chosen, func(i, j int) bool { return chosen[i] < chosen[j] })
	for start := 0; start < len(chosen); start += 5000 {
		end := min(start+5000, len(chosen))
		if err := tx.Model(&Invitation{}).Where("id IN ?", chosen[start:end]).
			Update("holdout", true).Error; err != nil {
			return 0, err
		}
	}
	return k, nil
}

// Claim is one invitation handed to a worker to send.
type Claim struct {
	Invitation
	QueueID  int64  // the row claimed: the invitation, or the follow-up
	Kind     string // invitation, gift, reminder, seat, update
	Name     string
	Tokens   map[string]string // kind → public link token (links.go)
	GiftCode string
}

// ClaimOptions shape a claim.
type ClaimOptions struct {
	Worker   string
	BatchID  string
	Limit    int
	Lease    time.Duration
	CancelBy time.Time // until when this batch can be recalled
	From     int64     // claim ids from here on (0: from the first)
}

// Claim leases up to Limit pending invitations of a sending campaign to one
// worker, in one transaction: consent is checked again (who unsubscribed
// since the freeze is suppressed), each email's public links are minted
// and stored hashed (links.go), and each gift recipient gets exactly one
// code. On PostgreSQL, rows are locked with SKIP LOCKED so workers never
// claim the same row.
func (s *Store) Claim(ctx context.Context, campaignID int64, o ClaimOptions) ([]Claim, error) {
	var out []Claim
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var c Campaign
		if err := tx.Take(&c, campaignID).Error; err != nil {
			return notFound(err, "campaign", campaignID)
		}
		if c.Status != StatusSending {
			return nil
		}
		now := s.now()
		rows, nameOf, err := s.claimRows(tx, campaignID, o, now)
		if err != nil || len(rows) == 0 {
			return err
		}
		ids := make([]int64, len(rows))
		for i, r := range rows {
			ids[i] = r.ID
		}
		codes, err := s.assignGiftCodes(tx, &c, ids, now)
		if err != nil {
			return err
		}
		kinds := []string{TokenUnsubscribe}
		if c.Kind == KindEvent {
			kinds = append(kinds, TokenRSVP, TokenCheckin)
		}
		links, err := mintLinks(tx, ids, kinds, now)
		if err != nil {
			return err
		}
		codesNeeded := c.Kind == KindGift && c.Fulfilment == "codes"
		for i, r := range rows {
			if codesNeeded && codes[r.ID] == "" {
				continue // failed for want of a code (assignGiftCodes): nothing to send
			}
			kind := "invitation"
			if c.Kind == KindGift {
				kind = "gift"
			}
			out = append(out, Claim{Invitation: r, QueueID: r.ID, Kind: kind, Name: nameOf[r.CustomerID], Tokens: links[i], GiftCode: codes[r.ID]})
		}
		return nil
	})
	return out, err
}

// claimRows leases the next pending invitations of a campaign to o.Worker
// and returns them by id with their customers' names. Consent is checked
// again on the rows being taken: who unsubscribed since the freeze is
// suppressed instead. Only those rows are checked: checking every pending
// row on each claim made a 100,000-guest send quadratic (137 ms per claim,
// 14 of its 22 seconds). A row taken is checked once more by
// SuppressWithdrawn just before its batch goes out.
func (s *Store) claimRows(tx *gorm.DB, campaignID int64, o ClaimOptions, now time.Time) ([]Invitation, map[int64]string, error) {
	var rows []Invitation
	nameOf := map[int64]string{}
	args := []any{o.Worker, now.Add(o.Lease), o.BatchID, o.CancelBy, now}
	if s.dialect == config.Postgres {
		// One statement locks the window (SKIP LOCKED: workers never take
		// the same row) with each row's customer, suppresses who withdrew
		// and leases the rest (three statements before, which locked the
		// window twice). Who was suppressed leaves room in the batch, so
		// the claim goes on to fill it.
		if err := s.guestColumns(); err != nil {
			return nil, nil, err
		}
		gq := &s.guestQuery
		if o.Limit <= 0 {
			return nil, nameOf, nil
		}
		rows = make([]Invitation, 0, min(o.Limit, 1000))
		var name string
		dest := make([]any, len(gq.inv)+1)
		for {
			// Scanned straight into the rows' fields (the guest read's
			// column list, over alias i): through GORM's Scan, a thousand
			// rows of ~35 columns were a fifth of the worker's CPU.
			res, err := tx.Raw(`WITH locked AS (
					SELECT i.id, c.consent_state = 'subscribed' AS ok, c.name FROM invitations i JOIN customers c ON c.id = i.customer_id
					WHERE i.campaign_id = ? AND i.status = 'pending' AND NOT i.holdout AND i.id >= ? ORDER BY i.id LIMIT ? FOR UPDATE OF i SKIP LOCKED)
				UPDATE invitations AS i SET
					status = CASE WHEN locked.ok THEN 'sending' ELSE 'suppressed' END,
					status_reason = CASE WHEN locked.ok THEN i.status_reason ELSE 'no consent at send time' END,
					lease_owner = CASE WHEN locked.ok THEN ? END,
					lease_until = CASE WHEN locked.ok THEN ?::timestamptz END,
					batch_id = CASE WHEN locked.ok THEN ? END,
					cancel_by = CASE WHEN locked.ok THEN ?::timestamptz END,
					attempts = attempts + CASE WHEN locked.ok THEN 1 ELSE 0 END,
					updated_at = ?
				FROM locked WHERE i.id = locked.id
				RETURNING `+gq.invCols+`, locked.name`,
				append([]any{campaignID, o.From, o.Limit - len(rows)}, args...)...).Rows()
			if err != nil {
				return nil, nil, err
			}
			suppressed := 0
			for res.Next() {
				rows = append(rows, Invitation{})
				inv := &rows[len(rows)-1]
				fieldPtrsInto(dest, inv, gq.inv)
				dest[len(gq.inv)] = &name
				if err := res.Scan(dest...); err != nil {
					res.Close()
					return nil, nil, err
				}
				if inv.Status == InvSending {
					nameOf[inv.CustomerID] = name
				} else {
					rows = rows[:len(rows)-1]
					suppressed++
				}
			}
			if err := res.Err(); err != nil {
				res.Close()
				return nil, nil, err
			}
			res.Close()
			if suppressed == 0 || len(rows) >= o.Limit {
				break
			}
		}
	} else {
		// SQLite has one writer: nobody else claims meanwhile, so the same
		// steps go one statement at a time.
		set := "status = 'sending', lease_owner = ?, lease_until = ?, batch_id = ?, cancel_by = ?, attempts = attempts + 1, updated_at = ?"
		for len(rows) < o.Limit {
			var window []int64
			if err := tx.Model(&Invitation{}).Where("campaign_id = ? AND status = 'pending' AND NOT holdout AND id >= ?", campaignID, o.From).
				Order("id").Limit(o.Limit-len(rows)).Pluck("id", &window).Error; err != nil {
				return nil, nil, err
			}
			if len(window) == 0 {
				break
			}
			sup := tx.Exec(`UPDATE invitations SET status = 'suppressed', status_reason = 'no consent at send time', updated_at = ?
				WHERE id IN ? AND customer_id IN (SELECT id FROM customers WHERE consent_state <> 'subscribed')`, now, window)
			if sup.Error != nil {
				return nil, nil, sup.Error
			}
			var got []Invitation
			if err := tx.Raw(`UPDATE invitations SET `+set+` WHERE id IN ? AND status = 'pending' RETURNING *`,
				append(args, window)...).Scan(&got).Error; err != nil {
				return nil, nil, err
			}
			rows = append(rows, got...)
			if sup.RowsAffected == 0 {
				break
			}
		}
		if len(rows) == 0 {
			return nil, nameOf, nil
		}
		custIDs := make([]int64, len(rows))
		for i, r := range rows {
			custIDs[i] = r.CustomerID
		}
		var names []struct {
			ID   int64
			Name string
		}
		if err := tx.Model(&Customer{}).Select("id, name").Where("id IN ?", custIDs).Scan(&names).Error; err != nil {
			return nil, nil, err
		}
		for _, n := range names {
			nameOf[n.ID] = n.Name
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
	return rows, nameOf, nil
}

// assignGiftCodes gives each claimed gift invitation its code: the one it
// already has (a resend), else the next free one, in the claim's
// transaction so no code goes to two people.
func (s *Store) assignGiftCodes(tx *gorm.DB, c *Campaign, ids []int64, now time.Time) (map[int64]string, error) {
	codes := map[int64]string{}
	if c.Kind != KindGift || c.Fulfilment != "codes" {
		return codes, nil
	}
	var have []GiftCode
	if err := tx.Where("invitation_id IN ?", ids).Find(&have).Error; err != nil {
		return nil, err
	}
	for _, g := range have {
		codes[*g.InvitationID] = g.Code
	}
	var need []int64
	for _, id := range ids {
		if _, ok := codes[id]; !ok {
			need = append(need, id)
		}
	}
	if len(need) == 0 {
		return codes, nil
	}
	var free []GiftCode
	q := tx.Where("campaign_id = ? AND invitation_id IS NULL", c.ID).Order("id").Limit(len(need))
	if s.dialect == config.Postgres {
		q = q.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"})
	}
	if err := q.Find(&free).Error; err != nil {
		return nil, err
	}
	for i, id := range need {
		if i >= len(free) {
			// The pool ran dry (codes were removed after the start check).
			if err := tx.Model(&Invitation{}).Where("id = ?", id).Updates(map[string]any{
				"status": InvFailed, "status_reason": "no gift code left in the pool", "lease_owner": nil, "updated_at": now}).Error; err != nil {
				return nil, err
			}
			continue
		}
		if err := tx.Model(&GiftCode{}).Where("id = ?", free[i].ID).
			Updates(map[string]any{"invitation_id": id, "assigned_at": now}).Error; err != nil {
			return nil, err
		}
		codes[id] = free[i].Code
	}
	return codes, nil
}

// SettleSent records that the mail service accepted a batch. It only
// counts while the worker still holds the lease: a worker that lost its
// lease leaves the rows to the recovery that cancels its batch. delivered
// says the service delivers on acceptance (the outbox): the rows are
// delivered at once and the "delivered" rule credits each customer.
func (s *Store) SettleSent(ctx context.Context, q Queue, worker, batchID string, ids []int64, messageID string, delivered bool) (int64, error) {
	var n int64
	if len(ids) == 0 {
		return 0, nil
	}
	err := s.tx(ctx, func(tx *gorm.DB) error {
		now := s.now()
		fields := map[string]any{"status": InvSent, "sent_at": now, "message_id": messageID, "lease_owner": nil,
			"lease_until": nil, "status_reason": "", "updated_at": now}
		if delivered {
			fields["status"] = InvDelivered
			if q == QueueInvitations { // follow-ups keep no delivery time
				fields["delivered_at"] = now
			}
		}
		in, arg := idsIn(tx, "id", ids)
		// The batch's lease first, from one of its rows (one claim gave
		// them all the same), then its rows through it by equality. Found
		// by the range lease_until > now, they were read through
		// invitations_lease_idx along with every row sent in the last two
		// minutes (its entries go only at vacuum): the send's costliest
		// statement, 175 ms a batch in a database that had sent 400,000.
		// The first row is read by its primary key, and any other row
		// still leased only if that one was settled otherwise meanwhile:
		// asked for any of the batch's ids, PostgreSQL read the whole
		// table while its statistics predated the freeze (about 25 ms a
		// batch early in a send, with autovacuum yet to analyse). No
		// status in the condition: a row a webhook event already moved
		// on still carries the batch's lease.
		var lease []time.Time
		leased := func(where string, val any) error {
			return tx.Table(string(q)).Where(where+" AND lease_owner = ? AND batch_id = ?", val, worker, batchID).
				Limit(1).Pluck("lease_until", &lease).Error
		}
		if err := leased("id = ?", ids[0]); err != nil {
			return err
		}
		if len(lease) == 0 && len(ids) > 1 {
			if err := leased(in, arg); err != nil {
				return err
			}
		}
		if len(lease) == 0 || !lease[0].After(now) {
			return nil // the lease is lost: recovery recalls the batch
		}
		if s.dialect == config.Postgres {
			// One statement settles the rows and records each customer's
			// contact from what it settled: the contacts read the batch's
			// rows back by id before, in a statement of their own.
			status, set := InvSent, ""
			if delivered {
				status = InvDelivered
			}
			args := []any{status, now}
			if delivered && q == QueueInvitations { // follow-ups keep no delivery time
				set, args = "delivered_at = ?, ", append(args, now)
			}
			args = append(args, messageID, now, pgArray{ids}, worker, batchID, lease[0], now)
			// Only the outbox's invitations are credited and need the rows
			// back; every other settle needs their count.
			credit := delivered && q == QueueInvitations
			tail := "SELECT count(*) FROM settled"
			if credit {
				tail = "SELECT id, campaign_id, customer_id FROM settled"
			}
			var rows []Invitation
			query := tx.Raw(`WITH settled AS (
					UPDATE `+string(q)+` SET status = ?, sent_at = ?, `+set+`message_id = ?,
						lease_owner = NULL, lease_until = NULL, status_reason = '', updated_at = ?
					WHERE id = ANY(?) AND status = 'sending' AND lease_owner = ? AND batch_id = ? AND lease_until = ?
					RETURNING id, campaign_id, customer_id),
				contacts AS (INSERT INTO customer_contacts (customer_id, last_contacted_at)
					SELECT customer_id, ? FROM settled GROUP BY customer_id ORDER BY customer_id
					ON CONFLICT (customer_id) DO UPDATE SET last_contacted_at = excluded.last_contacted_at
					WHERE excluded.last_contacted_at > customer_contacts.last_contacted_at)
				`+tail, args...)
			if !credit {
				return query.Scan(&n).Error
			}
			if err := query.Scan(&rows).Error; err != nil {
				return err
			}
			if n = int64(len(rows)); n == 0 {
				return nil
			}
			return s.creditInvitations(tx, rows, TriggerDelivered)
		}
		res := tx.Table(string(q)).
			Where(in+" AND status = 'sending' AND lease_owner = ? AND batch_id = ? AND lease_until = ?", arg, worker, batchID, lease[0]).
			Updates(fields)
		if res.Error != nil {
			return res.Error
		}
		n = res.RowsAffected
		if n == 0 {
			return nil
		}
		if err := recordContacts(tx, q, batchID, in, arg, now); err != nil {
			return err
		}
		if !delivered || q != QueueInvitations {
			return nil
		}
		var rows []Invitation
		if err := tx.Select("id, campaign_id, customer_id").Where(in+" AND batch_id = ?", arg, batchID).Find(&rows).Error; err != nil {
			return err
		}
		return s.creditInvitations(tx, rows, TriggerDelivered)
	})
	return n, err
}

// creditInvitations applies a trigger's rules to each invitation's
// customer, a campaign at a time.
func (s *Store) creditInvitations(tx *gorm.DB, rows []Invitation, trigger string) error {
	byCampaign := map[int64][]int64{}
	var order []int64
	for _, r := range rows {
		if _, ok := byCampaign[r.CampaignID]; !ok {
			order = append(order, r.CampaignID)
		}
		byCampaign[r.CampaignID] = append(byCampaign[r.CampaignID], r.CustomerID)
	}
	for _, id := range order {
		var c Campaign
		if err := tx.Take(&c, id).Error; err != nil {
			return err
		}
		if _, err := s.creditMany(tx, &c, byCampaign[id], trigger, CampaignSource(c.ID), "system"); err != nil {
			return err
		}
	}
	return nil
}

// SettleFailed marks invitations the mail service refused for good.
func (s *Store) SettleFailed(ctx context.Context, q Queue, worker, batchID string, reasons map[int64]string) error {
	now := s.now()
	for id, why := range reasons {
		if err := s.db.WithContext(ctx).Table(string(q)).
			Where("id = ? AND status = 'sending' AND lease_owner = ? AND batch_id = ?", id, worker, batchID).
			Updates(map[string]any{"status": InvFailed, "status_reason": truncate(why, 500), "lease_owner": nil,
				"lease_until": nil, "updated_at": now}).Error; err != nil {
			return err
		}
	}
	return nil
}

// Release hands claimed invitations back as pending: the mail service
// certainly did not take them (429, or a request refused as a whole).
func (s *Store) Release(ctx context.Context, q Queue, worker, batchID string, ids []int64, reason string) error {
	return s.db.WithContext(ctx).Table(string(q)).
		Where("id IN ? AND status = 'sending' AND lease_owner = ? AND batch_id = ?", ids, worker, batchID).
		Updates(map[string]any{"status": InvPending, "status_reason": truncate(reason, 500), "lease_owner": nil,
			"lease_until": nil, "batch_id": nil, "cancel_by": nil, "updated_at": s.now()}).Error
}

// SuppressWithdrawn drops claimed sends whose customer withdrew consent
// after the claim, just before the send, and returns their queue ids.
func (s *Store) SuppressWithdrawn(ctx context.Context, q Queue, worker, batchID string, claims []Claim) ([]int64, error) {
	byCustomer := make(map[int64][]int64, len(claims))
	customers := make([]int64, 0, len(claims))
	for _, c := range claims {
		if _, ok := byCustomer[c.CustomerID]; !ok {
			customers = append(customers, c.CustomerID)
		}
		byCustomer[c.CustomerID] = append(byCustomer[c.CustomerID], c.QueueID)
	}
	// The customers alone, by id. Joined through the queue, the check
	// read the whole invitations table whenever its statistics were from
	// before the freeze (as autovacuum leaves them early in a send):
	// 17.8 ms a batch of 1,000 in a 100,000-email send, under 1.1 ms this
	// way (PostgreSQL's statement log).
	var withdrawn []int64
	in, arg := idsIn(s.db, "id", customers)
	if err := s.db.WithContext(ctx).Model(&Customer{}).Where(in+" AND consent_state <> 'subscribed'", arg).
		Pluck("id", &withdrawn).Error; err != nil || len(withdrawn) == 0 {
		return nil, err
	}
	var gone []int64
	for _, id := range withdrawn {
		gone = append(gone, byCustomer[id]...)
	}
	slices.Sort(gone)
	err := s.db.WithContext(ctx).Table(string(q)).
		Where("id IN ? AND status = 'sending' AND lease_owner = ? AND batch_id = ?", gone, worker, batchID).
		Updates(map[string]any{"status": InvSuppressed, "status_reason": "unsubscribed just before sending",
			"lease_owner": nil, "lease_until": nil, "updated_at": s.now()}).Error
	return gone, err
}

// ExpiredBatch is a batch whose worker's lease ran out: it died, hung or
// lost the database mid-send, so whether the mail service took the batch
// is unknown until it is cancelled.
type ExpiredBatch struct {
	Queue      Queue
	CampaignID int64
	BatchID    string
	CancelBy   *time.Time
	Count      int64
}

// ExpiredBatches lists batches with expired leases.
func (s *Store) ExpiredBatches(ctx context.Context) ([]ExpiredBatch, error) {
	var out []ExpiredBatch
	for _, q := range []Queue{QueueInvitations, QueueFollowups} {
		var bs []ExpiredBatch
		err := s.db.WithContext(ctx).Table(string(q)).
			Select("campaign_id, batch_id, cancel_by, count(*) AS count").
			Where("status = 'sending' AND lease_until < ?", s.now()).
			Group("campaign_id, batch_id, cancel_by").Scan(&bs).Error
		if err != nil {
			return nil, err
		}
		for i := range bs {
			bs[i].Queue = q
		}
		out = append(out, bs...)
	}
	return out, nil
}

// TakeOverBatch makes worker the owner of an expired batch's rows, under a
// lease of its own, before anything is done about the batch: the worker
// that lost its lease then settles none of them (SettleSent wants its own
// lease), whatever its clock says. Only rows still sending under an
// expired lease are taken, in one conditional UPDATE, so of two recoverers
// (or a recoverer and a late settle) one wins each batch. It returns how
// many rows were taken; none means someone else settled or took the batch.
func (s *Store) TakeOverBatch(ctx context.Context, q Queue, batchID, worker string, lease time.Duration) (int64, error) {
	now := s.now()
	res := s.db.WithContext(ctx).Table(string(q)).
		Where("batch_id = ? AND status = 'sending' AND lease_until < ?", batchID, now).
		Updates(map[string]any{"lease_owner": worker, "lease_until": now.Add(lease), "updated_at": now})
	return res.RowsAffected, res.Error
}

// GiveBackBatch ends worker's lease on a batch it took over and could not
// cancel, so that the next recovery, by any worker, tries again at once.
func (s *Store) GiveBackBatch(ctx context.Context, q Queue, worker, batchID string) error {
	now := s.now()
	return s.db.WithContext(ctx).Table(string(q)).
		Where("batch_id = ? AND status = 'sending' AND lease_owner = ?", batchID, worker).
		Updates(map[string]any{"lease_until": now, "updated_at": now}).Error
}

// RequeueBatch returns a batch's invitations, taken over by worker
// (TakeOverBatch) and cancelled at the mail service since, to pending, so
// they are sent again in a new batch.
func (s *Store) RequeueBatch(ctx context.Context, q Queue, worker, batchID string) (int64, error) {
	res := s.db.WithContext(ctx).Table(string(q)).
		Where("batch_id = ? AND status = 'sending' AND lease_owner = ?", batchID, worker).
		Updates(map[string]any{"status": InvPending, "status_reason": "resent after a worker stopped mid-send",
			"lease_owner": nil, "lease_until": nil, "batch_id": nil, "cancel_by": nil, "updated_at": s.now()})
	return res.RowsAffected, res.Error
}

// MarkUncertain settles a batch taken over by worker (TakeOverBatch) that
// can no longer be cancelled: it may or may not have gone out. It is
// counted as sent, flagged uncertain on the campaign page, and never sent
// again.
func (s *Store) MarkUncertain(ctx context.Context, q Queue, worker, batchID string) (int64, error) {
	now := s.now()
	res := s.db.WithContext(ctx).Table(string(q)).
		Where("batch_id = ? AND status = 'sending' AND lease_owner = ?", batchID, worker).
		Updates(map[string]any{"status": InvSent, "uncertain": true, "sent_at": now,
			"status_reason": "a worker stopped mid-send and the batch could no longer be recalled; it may not have gone out",
			"lease_owner":   nil, "lease_until": nil, "updated_at": now})
	return res.RowsAffected, res.Error
}

// FinishIfDone closes a run when nothing is left to send: a one-off
// campaign becomes sent; a standing one goes back to scheduled for its
// next run.
func (s *Store) FinishIfDone(ctx context.Context, campaignID int64) (bool, error) {
	var left int64
	if err := s.db.WithContext(ctx).Model(&Invitation{}).
		Where("campaign_id = ? AND status IN ('pending', 'sending') AND NOT holdout", campaignID).
		Count(&left).Error; err != nil || left > 0 {
		return false, err
	}
	c, err := s.Campaign(ctx, campaignID)
	if err != nil {
		return false, err
	}
	if c.Standing() {
		// The next run after this one's time: a run started in the mail
		// service's lead finishes before its own time, and the first run
		// after now would be this one again.
		after := s.now()
		if c.SendAt != nil && c.SendAt.After(after) {
			after = *c.SendAt
		}
		next, err := nextCronRun(c.CronSpec, c.Location(), after)
		if err != nil {
			return false, err
		}
		return s.transition(s.db.WithContext(ctx), campaignID, []Status{StatusSending}, StatusScheduled,
			map[string]any{"send_at": next})
	}
	return s.transition(s.db.WithContext(ctx), campaignID, []Status{StatusSending}, StatusSent, nil)
}

// PendingRange is the first and last id of a campaign's invitations
// waiting to be sent (0, 0 when none).
func (s *Store) PendingRange(ctx context.Context, campaignID int64) (lo, hi int64, err error) {
	var r struct{ Lo, Hi *int64 }
	err = s.db.WithContext(ctx).Model(&Invitation{}).Select("min(id) AS lo, max(id) AS hi").
		Where("campaign_id = ? AND status = 'pending' AND NOT holdout", campaignID).Scan(&r).Error
	if err != nil || r.Lo == nil {
		return 0, 0, err
	}
	return *r.Lo, *r.Hi, nil
}

// Invitations pages through a campaign's invitations by id.
func (s *Store) Invitations(ctx context.Context, campaignID int64, page, perPage int) ([]Invitation, *int, error) {
	if page < 1 {
		page = 1
	}
	if perPage <= 0 || perPage > 1000 {
		perPage = 100
	}
	var out []Invitation
	err := s.db.WithContext(ctx).Where("campaign_id = ?", campaignID).Order("id").
		Limit(perPage + 1).Offset((page - 1) * perPage).Find(&out).Error
	if err != nil {
		return nil, nil, err
	}
	var next *int
	if len(out) > perPage {
		out = out[:perPage]
		n := page + 1
		next = &n
	}
	return out, next, nil
}

// truncate keeps at most n bytes of s, cut between characters: cut inside
// one, the text is not UTF-8 and PostgreSQL refuses to store it (a bounce
// reason from SendGrid, a status note), failing the whole transaction.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

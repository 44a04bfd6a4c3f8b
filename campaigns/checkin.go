package campaigns

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/rapport/rapport/config"
)

// CheckinTarget names who arrives: an invitee by customer id or by the
// token in their QR code, or a walk-in by name and email.
type CheckinTarget struct {
	CustomerID int64  `json:"customer_id"`
	Token      string `json:"token"`
	Name       string `json:"name"`
	Email      string `json:"email"`
	Company    string `json:"company"`
}

// CheckinResult is what a check-in did.
type CheckinResult struct {
	InvitationID int64     `json:"invitation_id"`
	CustomerID   int64     `json:"customer_id"`
	Name         string    `json:"name"`
	CheckedInAt  time.Time `json:"checked_in_at"`
	Level        Level     `json:"level"`
	Created      bool      `json:"-"` // this call made the attendance
	WalkIn       bool      `json:"walk_in"`
}

// CheckIn records an arrival, once: two reps tapping the same guest make
// one attendance and one promotion. A walk-in is found by email or created
// (at Contact, owned by the rep) and gets an invitation of their own.
func (s *Store) CheckIn(ctx context.Context, campaignID int64, t CheckinTarget, rep *User) (*CheckinResult, error) {
	if strings.TrimSpace(t.Token) != "" || t.CustomerID > 0 {
		return s.checkInInvitee(ctx, campaignID, t, rep)
	}
	var out *CheckinResult
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var c Campaign
		if err := tx.Take(&c, campaignID).Error; err != nil {
			return notFound(err, "campaign", campaignID)
		}
		if err := c.takesCheckins(); err != nil {
			return err
		}
		inv, round, walkIn, err := s.findWalkIn(tx, &c, t, rep)
		if err != nil {
			return err
		}
		now := s.now()
		res := tx.Model(&Invitation{}).Where("id = ? AND NOT attended", inv.ID).
			Updates(arrivalColumns(map[string]any{"attended": true, "checked_in_at": now, "checked_in_by": repEmail(rep), "updated_at": now}))
		if res.Error != nil {
			return res.Error
		}
		created := res.RowsAffected == 1
		if created {
			if _, err := s.creditManyRounds(tx, &c, []int64{inv.CustomerID}, map[int64]int{inv.CustomerID: round},
				TriggerAttended, CampaignSource(c.ID), actorOf(rep)); err != nil {
				return err
			}
		}
		if err := tx.Take(inv, inv.ID).Error; err != nil {
			return err
		}
		var cu Customer
		if err := tx.Select("id, name, level").Take(&cu, inv.CustomerID).Error; err != nil {
			return err
		}
		out = &CheckinResult{InvitationID: inv.ID, CustomerID: inv.CustomerID, Name: cu.Name, CheckedInAt: *inv.CheckedInAt,
			Level: cu.Level, Created: created, WalkIn: walkIn || inv.WalkIn}
		return nil
	})
	return out, err
}

// A holdout customer who turns up anyway (brought by a colleague, say) is
// a real guest at the door and is checked in; but they are no longer a
// control. The check-in that makes their attendance also takes their
// invitation out of the holdout, as a walk-in never sent anything, so ROI
// counts them with the attendees the door counted instead of leaving a
// promoted attendee's revenue in the control group, and the door's search
// shows them (to undo a mistaken tap). These columns go in the same UPDATE,
// read from the row before it (PostgreSQL and SQLite alike).
const (
	leaveHoldoutReason = "holdout: came to the event, left the control group; never sent"
	leaveHoldoutSQL    = `holdout = false, walk_in = (walk_in OR holdout),
		status = CASE WHEN holdout THEN 'suppressed' ELSE status END,
		status_reason = CASE WHEN holdout THEN '` + leaveHoldoutReason + `' ELSE status_reason END`
)

// arrivalColumns adds leaving the holdout to a check-in's columns.
func arrivalColumns(cols map[string]any) map[string]any {
	cols["holdout"] = false
	cols["walk_in"] = gorm.Expr("walk_in OR holdout")
	cols["status"] = gorm.Expr("CASE WHEN holdout THEN ? ELSE status END", InvSuppressed)
	cols["status_reason"] = gorm.Expr("CASE WHEN holdout THEN ? ELSE status_reason END", leaveHoldoutReason)
	return cols
}

func (c *Campaign) takesCheckins() error {
	if c.Kind != KindEvent {
		return &Error{Code: EINVALID, Message: "only events have check-ins", Fields: map[string]string{"campaign": "is a gift campaign"}}
	}
	if c.Status == StatusCancelled || c.Status == StatusDraft {
		return Errorf(ECONFLICT, "a %s event takes no check-ins", c.Status)
	}
	return nil
}

func repEmail(rep *User) string {
	if rep == nil {
		return ""
	}
	return rep.Email
}

// checkInInvitee checks in an invitee named by customer id or QR code.
// One read finds the event and the guest; a guest already in is answered
// from it, and a first arrival is one conditional UPDATE and its credit.
// (Ten statements in one transaction made 566 check-ins a second.)
func (s *Store) checkInInvitee(ctx context.Context, campaignID int64, t CheckinTarget, rep *User) (*CheckinResult, error) {
	q := `SELECT c.kind, c.status, COALESCE(c.rules, ''), i.id, i.campaign_id, i.customer_id, i.attended, i.checked_in_at, i.walk_in,
			i.holdout, i.attended_undone, cu.name, cu.level
		FROM campaigns c `
	args := []any{campaignID}
	if tok := strings.TrimSpace(t.Token); tok != "" {
		if len(tok) < 26 || len(tok) > 64 {
			return nil, s.checkinCampaignOr(ctx, campaignID, badLink())
		}
		if l, ok := parseLink(TokenCheckin, tok); ok {
			q += `LEFT JOIN link_sets ls ON ls.id = $2 AND ls.checkin_hash = $3 AND ls.created_at > $4
				LEFT JOIN invitations i ON i.id = ls.invitation_id `
			args = append(args, l.setID, l.hash, s.now().Add(-tokenLifetime(TokenCheckin)))
		} else { // a link stored one row each, before link sets
			q += `LEFT JOIN public_tokens t ON t.token_hash = $2 AND t.kind = $3 AND t.expires_at > $4
				LEFT JOIN invitations i ON i.id = t.invitation_id `
			args = append(args, HashSecret(tok), TokenCheckin, s.now())
		}
	} else {
		q += `LEFT JOIN invitations i ON i.campaign_id = c.id AND i.customer_id = $2 `
		args = append(args, t.CustomerID)
	}
	q += `LEFT JOIN customers cu ON cu.id = i.customer_id WHERE c.id = $1` // numbered: the arguments are not in the text's order
	var (
		c                        Campaign
		invID, invCampaign, cust sql.NullInt64
		attended, walkIn, held   sql.NullBool
		checkedIn                sql.NullTime
		name                     sql.NullString
		round                    sql.NullInt64
		level                    sql.NullInt16
	)
	err := s.sqlDB.QueryRowContext(ctx, s.rebind(q), args...).Scan(&c.Kind, &c.Status, &c.Rules, &invID, &invCampaign, &cust,
		&attended, &checkedIn, &walkIn, &held, &round, &name, &level)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, Errorf(ENOTFOUND, "campaign %d not found", campaignID)
	}
	if err != nil {
		return nil, err
	}
	c.ID = campaignID
	if err := c.takesCheckins(); err != nil {
		return nil, err
	}
	switch {
	case !invID.Valid && t.CustomerID > 0 && strings.TrimSpace(t.Token) == "":
		return nil, Errorf(ENOTFOUND, "invitation of customer %d not found", t.CustomerID)
	case !invID.Valid:
		return nil, badLink()
	case invCampaign.Int64 != campaignID:
		return nil, Errorf(ENOTFOUND, "this code belongs to another event")
	}
	out := &CheckinResult{InvitationID: invID.Int64, CustomerID: cust.Int64, Name: name.String, Level: Level(level.Int16),
		WalkIn: walkIn.Bool || held.Bool} // a holdout arriving leaves the holdout as a walk-in
	if attended.Bool && checkedIn.Valid {
		out.CheckedInAt = checkedIn.Time.UTC()
		return out, nil
	}
	// First arrivals are written together with the event's others
	// (groupcommit.go): at a busy door, one commit for many guests.
	got, err := s.arrivals.submit(ctx, campaignID, &arrival{invID: out.InvitationID, customerID: out.CustomerID,
		c: c, by: repEmail(rep), actor: actorOf(rep), round: int(round.Int64)}, s.settleArrivals)
	if err != nil {
		return nil, err
	}
	out.Created, out.CheckedInAt = got.created, got.at
	if got.level != 0 {
		out.Level = got.level
	}
	return out, nil
}

// arrival is a guest's first check-in waiting to be written.
type arrival struct {
	invID, customerID int64
	c                 Campaign // kind, status and rules, for the credit
	by, actor         string   // the rep
	round             int      // attended credits of this invitation undone (creditKey)
}

// arrived is what writing an arrival did.
type arrived struct {
	created bool // this request checked the guest in (not another rep)
	at      time.Time
	level   Level // after the attended credit; 0 when unchanged
}

// settleArrivals checks in a batch of guests of one event in one
// transaction: each invitation once, the first request for it winning, and
// the attended credit for those checked in, a rep at a time.
func (s *Store) settleArrivals(ctx context.Context, campaignID int64, batch []*arrival) ([]arrived, error) {
	now := s.now().Truncate(time.Microsecond) // as PostgreSQL keeps it, so a later read agrees
	first := map[int64]int{}                  // invitation -> the first request for it
	var ids []int64
	var bys []string
	for i, a := range batch {
		if _, ok := first[a.invID]; !ok {
			first[a.invID] = i
			ids, bys = append(ids, a.invID), append(bys, a.by)
		}
	}
	if s.dialect == config.Postgres {
		return s.settleArrivalsPipelined(ctx, campaignID, batch, first, ids, bys, now)
	}
	outs := make([]arrived, len(batch))
	err := s.tx(ctx, func(tx *gorm.DB) error {
		created := map[int64]bool{}
		for k, id := range ids {
			res := tx.Model(&Invitation{}).Where("id = ? AND NOT attended", id).
				Updates(arrivalColumns(map[string]any{"attended": true, "checked_in_at": now, "checked_in_by": bys[k], "updated_at": now}))
			if res.Error != nil {
				return res.Error
			}
			created[id] = res.RowsAffected == 1
		}
		// Another rep was a moment faster: their time stands.
		taken := notCreated(ids, created)
		at := map[int64]time.Time{}
		if len(taken) > 0 {
			var rows []Invitation
			if err := tx.Select("id, checked_in_at").Where("id IN ?", taken).Find(&rows).Error; err != nil {
				return err
			}
			for _, r := range rows {
				if r.CheckedInAt != nil {
					at[r.ID] = r.CheckedInAt.UTC()
				}
			}
		}
		// The attended credit, a rep (ledger actor) at a time.
		byActor := map[string][]int64{}
		var actors []string
		for i, a := range batch {
			if created[a.invID] && first[a.invID] == i {
				if _, ok := byActor[a.actor]; !ok {
					actors = append(actors, a.actor)
				}
				byActor[a.actor] = append(byActor[a.actor], a.customerID)
			}
		}
		levels := map[int64]Level{}
		rounds := arrivalRounds(batch)
		for _, actor := range actors {
			got, err := s.creditManyRounds(tx, &batch[0].c, byActor[actor], rounds, TriggerAttended, CampaignSource(campaignID), actor)
			if err != nil {
				return err
			}
			for id, l := range got {
				levels[id] = l
			}
		}
		arrivalOutcomes(outs, batch, first, created, at, levels, now)
		return nil
	})
	return outs, err
}

// arrivalRounds maps the customers of a batch to their credit round, when
// not 0.
func arrivalRounds(batch []*arrival) map[int64]int {
	var out map[int64]int
	for _, a := range batch {
		if a.round != 0 {
			if out == nil {
				out = map[int64]int{}
			}
			out[a.customerID] = a.round
		}
	}
	return out
}

// notCreated is the invitations of ids this batch did not check in.
func notCreated(ids []int64, created map[int64]bool) []int64 {
	var out []int64
	for _, id := range ids {
		if !created[id] {
			out = append(out, id)
		}
	}
	return out
}

// arrivalOutcomes tells each request of a batch what became of it.
func arrivalOutcomes(outs []arrived, batch []*arrival, first map[int64]int, created map[int64]bool,
	at map[int64]time.Time, levels map[int64]Level, now time.Time) {
	for i, a := range batch {
		o := &outs[i]
		switch {
		case created[a.invID] && first[a.invID] == i:
			o.created, o.at, o.level = true, now, levels[a.customerID]
		case created[a.invID]: // the same guest twice in this batch
			o.at = now
		default:
			o.at = at[a.invID]
		}
	}
}

// settleArrivalsPipelined is settleArrivals on PostgreSQL in two round
// trips: the arrivals written, and the levels and held credits of their
// customers locked and read; then the credits, the times of guests another
// rep checked in first, and the commit. (Seven round trips, each waiting
// for a busy core, made a batch the slow part of a first check-in.)
func (s *Store) settleArrivalsPipelined(ctx context.Context, campaignID int64, batch []*arrival, first map[int64]int,
	ids []int64, bys []string, now time.Time) ([]arrived, error) {
	source := CampaignSource(campaignID)
	rules, _ := rulesFor(&batch[0].c, TriggerAttended, source)
	rounds := arrivalRounds(batch)
	keys := roundKeys(rules, source, rounds)
	var custs []int64
	for _, i := range first {
		custs = append(custs, batch[i].customerID)
	}
	slices.Sort(custs) // locked in id order, as creditMany does
	custs = slices.Compact(custs)
	outs := make([]arrived, len(batch))
	err := s.withPgConn(ctx, func(c *pgx.Conn) error {
		// Locks go event, invitations, customers, each in id order, as RSVP
		// batches take them (the event's FOR UPDATE there), so batches of
		// two processes, or an RSVP batch and a check-in batch, do not cross
		// on them. What still can (a seat notice's key-share lock on a
		// promoted guest's customer) is settled once more (groupcommit.go).
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		b.Queue(`SELECT 1 FROM campaigns WHERE id = $1 FOR SHARE`, campaignID)
		b.Queue(`SELECT id FROM invitations WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ids)
		b.Queue(`UPDATE invitations AS i SET attended = true, checked_in_at = $1, checked_in_by = v.by, updated_at = $1, `+leaveHoldoutSQL+`
			FROM unnest($2::bigint[], $3::text[]) AS v(id, by) WHERE i.id = v.id AND NOT i.attended RETURNING i.id`, now, ids, bys)
		if len(rules) > 0 {
			queueLockAndHeldCredits(b, custs, keys)
		}
		created := map[int64]bool{}
		var cur []customerLevel
		var done []heldCredit
		if err := sendBatch(ctx, c, b, 3, func(br pgx.BatchResults) error {
			rows, _ := br.Query()
			got, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				return err
			}
			for _, id := range got {
				created[id] = true
			}
			if len(rules) > 0 {
				cur, done, err = readLevelsAndHeldCredits(br)
				setRounds(cur, rounds)
			}
			return err
		}); err != nil {
			return err
		}
		// The attended credit, a rep (ledger actor) at a time, for the
		// guests this batch checked in.
		creditedBy := map[int64]string{} // customer -> the rep whose tap won
		for id, i := range first {
			if created[id] {
				creditedBy[batch[i].customerID] = batch[i].actor
			}
		}
		levels := map[int64]Level{}
		b = &pgx.Batch{}
		byActor := map[string][]customerLevel{}
		for _, cl := range cur {
			if a, ok := creditedBy[cl.ID]; ok {
				byActor[a] = append(byActor[a], cl)
			}
		}
		for actor, cls := range byActor {
			plan, err := planCredits(rules, cls, done, source, actor, s.now())
			if err != nil {
				return err
			}
			for id, l := range plan.level {
				levels[id] = l
			}
			queueCredits(b, plan)
		}
		taken := notCreated(ids, created) // another rep was a moment faster: their time stands
		nExec := b.Len()
		if len(taken) > 0 {
			b.Queue(`SELECT id, checked_in_at FROM invitations WHERE id = ANY($1)`, taken)
		}
		b.Queue("COMMIT")
		at := map[int64]time.Time{}
		if err := sendBatch(ctx, c, b, nExec, func(br pgx.BatchResults) error {
			if len(taken) > 0 {
				rows, _ := br.Query()
				var id int64
				var t *time.Time
				if _, err := pgx.ForEachRow(rows, []any{&id, &t}, func() error {
					if t != nil {
						at[id] = t.UTC()
					}
					return nil
				}); err != nil {
					return err
				}
			}
			_, err := br.Exec() // COMMIT
			return err
		}); err != nil {
			return err
		}
		arrivalOutcomes(outs, batch, first, created, at, levels, now)
		return nil
	})
	return outs, err
}

// checkinCampaignOr reports the campaign's own problem (missing, not an
// event, cancelled) before the target's, as a check-in always has.
func (s *Store) checkinCampaignOr(ctx context.Context, campaignID int64, err error) error {
	c, cerr := s.Campaign(ctx, campaignID)
	if cerr != nil {
		return cerr
	}
	if cerr := c.takesCheckins(); cerr != nil {
		return cerr
	}
	return err
}

func actorOf(u *User) string {
	if u == nil {
		return "system"
	}
	return u.Email
}

// findWalkIn finds or creates a walk-in's customer and invitation, with
// the invitation's credit round (arrival.round).
func (s *Store) findWalkIn(tx *gorm.DB, c *Campaign, t CheckinTarget, rep *User) (*Invitation, int, bool, error) {
	lock := func(q *gorm.DB) *gorm.DB {
		if s.dialect == config.Postgres {
			return q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		return q
	}
	var inv Invitation
	// A walk-in.
	v := Invalid{}
	name := tidy(t.Name)
	if name == "" {
		v.Add("name", "is required for a walk-in")
	}
	email, err := NormalizeEmail(t.Email)
	if err != nil {
		v.Add("email", "%s", err.Error())
	}
	if err := v.Err(); err != nil {
		return nil, 0, false, err
	}
	var cu Customer
	err = tx.Where("email = ?", email).Take(&cu).Error
	switch {
	case err == gorm.ErrRecordNotFound:
		now := s.now()
		company := tidy(t.Company)
		cu = Customer{Name: name, Email: email, Company: company, Level: LevelContact, ConsentState: Subscribed,
			CreatedAt: now, UpdatedAt: now}
		if rep != nil && rep.ID != 0 {
			cu.OwnerID = &rep.ID
		}
		// Two reps adding the same new guest at once (or a double tap):
		// on PostgreSQL the second insert waits for the first and then
		// does nothing, and the guest is read as the first one made them.
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Omit("Owner").Create(&cu)
		if res.Error != nil {
			return nil, 0, false, res.Error
		}
		if res.RowsAffected == 0 {
			if err := tx.Where("email = ?", email).Take(&cu).Error; err != nil {
				return nil, 0, false, err
			}
			break
		}
		if err := recordCreated(tx, []*Customer{&cu}, "walk_in", CampaignSource(c.ID), actorOf(rep), now); err != nil {
			return nil, 0, false, err
		}
	case err != nil:
		return nil, 0, false, err
	}
	var found struct {
		Invitation     `gorm:"embedded"`
		AttendedUndone int
	}
	byGuest := func() error {
		err := lock(tx).Model(&Invitation{}).Where("campaign_id = ? AND customer_id = ?", c.ID, cu.ID).Take(&found).Error
		inv = found.Invitation
		return err
	}
	if err := byGuest(); err == nil {
		return &inv, found.AttendedUndone, false, nil // they were invited after all
	} else if !errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, 0, false, err
	}
	now := s.now()
	inv = Invitation{CampaignID: c.ID, CustomerID: cu.ID, Email: cu.Email, Run: max(c.Runs, 1), Status: InvSuppressed,
		StatusReason: "walk-in: never sent", RSVP: RSVPNone, WalkIn: true, CreatedAt: now, UpdatedAt: now}
	res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&inv)
	if res.Error != nil {
		return nil, 0, false, res.Error
	}
	if res.RowsAffected == 0 { // another rep's tap made it a moment ago
		if err := byGuest(); err != nil {
			return nil, 0, false, err
		}
	}
	return &inv, found.AttendedUndone, true, nil
}

// RuleCheckinUndone is the ledger rule of an undone check-in.
const RuleCheckinUndone = "checkin_undone"

// UndoCheckIn takes back a mistaken tap, and the promotion it credited,
// in one transaction. The ledger is append-only, so the credit's row stays
// and a compensating row (rule checkin_undone, by the rep who undid it)
// restores the level before it, when the attended credit is still the
// customer's last change. When later changes followed (a purchase, a level
// set by hand) the level stays where they put it, and the row records the
// undo with the level unchanged and says why. A guest not checked in is
// left as is.
func (s *Store) UndoCheckIn(ctx context.Context, campaignID, invitationID int64, by *User) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		lock := func(q *gorm.DB) *gorm.DB { // invitation, then customer: as check-ins take them
			if s.dialect == config.Postgres {
				return q.Clauses(clause.Locking{Strength: "UPDATE"})
			}
			return q
		}
		var inv struct {
			CustomerID     int64
			Attended       bool
			AttendedUndone int
			Status         InvitationStatus
			StatusReason   string
		}
		if err := lock(tx.Model(&Invitation{}).Select("customer_id, attended, attended_undone, status, status_reason")).
			Where("id = ? AND campaign_id = ?", invitationID, campaignID).Take(&inv).Error; err != nil {
			return notFound(err, "invitation "+itoa(invitationID)+" in campaign", campaignID)
		}
		if !inv.Attended {
			return nil
		}
		var c Campaign
		if err := tx.Select("id, rules").Take(&c, campaignID).Error; err != nil {
			return notFound(err, "campaign", campaignID)
		}
		now := s.now()
		cols := map[string]any{"attended": false, "checked_in_at": nil, "checked_in_by": "", "updated_at": now}
		undone, err := s.undoAttendedCredit(tx, lock, &c, inv.CustomerID, inv.AttendedUndone, actorOf(by), now)
		if err != nil {
			return err
		}
		if undone { // the next real check-in credits under a key of its own
			cols["attended_undone"] = inv.AttendedUndone + 1
		}
		if inv.Status == InvSuppressed && inv.StatusReason == leaveHoldoutReason {
			// A holdout customer tapped by mistake goes back into the
			// control group, as the check-in had taken them out of it.
			cols["holdout"], cols["walk_in"], cols["status"], cols["status_reason"] = true, false, InvPending, ""
		}
		return tx.Model(&Invitation{}).Where("id = ?", invitationID).Updates(cols).Error
	})
}

// undoAttendedCredit takes back a customer's attended credit of round
// from campaign c (see UndoCheckIn), saying whether the level went back.
func (s *Store) undoAttendedCredit(tx *gorm.DB, lock func(*gorm.DB) *gorm.DB, c *Campaign, customerID int64, round int,
	actor string, now time.Time) (bool, error) {
	source := CampaignSource(c.ID)
	rules, _ := rulesFor(c, TriggerAttended, source)
	if len(rules) == 0 {
		return false, nil
	}
	keys := make([]string, len(rules))
	for i, r := range rules {
		keys[i] = creditKey(r.Name, source, round)
	}
	var cu struct{ Level Level }
	if err := lock(tx.Model(&Customer{}).Select("level")).Where("id = ?", customerID).Take(&cu).Error; err != nil {
		return false, notFound(err, "customer", customerID)
	}
	var credits []LedgerEntry
	if err := tx.Where("customer_id = ? AND credit_key IN ?", customerID, keys).Order("id").Find(&credits).Error; err != nil {
		return false, err
	}
	if len(credits) == 0 { // the check-in moved no level
		return false, nil
	}
	first, last := credits[0], credits[len(credits)-1]
	var later []int64
	if err := tx.Model(&LedgerEntry{}).Where("customer_id = ? AND id > ?", customerID, first.ID).Order("id").
		Pluck("id", &later).Error; err != nil {
		return false, err
	}
	later = slices.DeleteFunc(later, func(id int64) bool {
		return slices.ContainsFunc(credits, func(e LedgerEntry) bool { return e.ID == id })
	})
	e := LedgerEntry{CustomerID: customerID, FromLevel: cu.Level, ToLevel: cu.Level, Rule: RuleCheckinUndone, Source: source,
		Actor: actor, CreatedAt: now}
	back := len(later) == 0 && cu.Level == last.ToLevel
	if back {
		e.ToLevel = first.FromLevel
		e.Note = fmt.Sprintf("check-in undone: reverses the attended credit (ledger #%d, level %d to %d)",
			first.ID, first.FromLevel, last.ToLevel)
		if err := tx.Model(&Customer{}).Where("id = ?", customerID).
			Updates(map[string]any{"level": e.ToLevel, "updated_at": now}).Error; err != nil {
			return false, err
		}
	} else {
		e.Note = fmt.Sprintf("check-in undone: the attended credit (ledger #%d, level %d to %d) stands, "+
			"because later level changes followed it; set the level by hand if it should go back", first.ID, first.FromLevel, last.ToLevel)
	}
	return back, tx.Create(&e).Error
}

// Invitee is one row of the check-in list.
type Invitee struct {
	InvitationID int64      `json:"invitation_id"`
	CustomerID   int64      `json:"customer_id"`
	Name         string     `json:"name"`
	Email        string     `json:"email"`
	Company      string     `json:"company"`
	RSVP         string     `json:"rsvp"`
	Guests       int        `json:"guests"`
	Attended     bool       `json:"attended"`
	CheckedInAt  *time.Time `json:"checked_in_at"`
	WalkIn       bool       `json:"walk_in"`
}

// SearchInvitees finds invitees (not the holdout) by name, email or
// company: yes answers first, then by name.
func (s *Store) SearchInvitees(ctx context.Context, campaignID int64, q string, limit int) ([]Invitee, error) {
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	query := s.db.WithContext(ctx).Table("invitations AS i").
		Select("i.id AS invitation_id, i.customer_id, c.name, c.email, c.company, i.rsvp, i.guests, i.attended, i.checked_in_at, i.walk_in").
		Joins("JOIN customers c ON c.id = i.customer_id").
		Where("i.campaign_id = ? AND NOT i.holdout", campaignID)
	if t := strings.ToLower(strings.TrimSpace(q)); t != "" {
		like := "%" + escapeLike(t) + "%"
		query = query.Where("(lower(c.name) LIKE ? ESCAPE '\\' OR c.email LIKE ? ESCAPE '\\' OR lower(c.company) LIKE ? ESCAPE '\\')", like, like, like)
	}
	var out []Invitee
	err := query.Order("CASE WHEN i.rsvp = 'yes' THEN 0 ELSE 1 END, lower(c.name)").Limit(limit).Scan(&out).Error
	return out, err
}

// CheckinCounts are the door's counters.
type CheckinCounts struct {
	Expected int64 `json:"expected"` // yes answers (guests not counted)
	Seats    int64 `json:"seats"`    // yes answers with their guests
	Arrived  int64 `json:"arrived"`
	WalkIns  int64 `json:"walk_ins"`
}

// CheckinCounts counts expected and arrived guests.
func (s *Store) CheckinCounts(ctx context.Context, campaignID int64) (CheckinCounts, error) {
	var out CheckinCounts
	err := s.db.WithContext(ctx).Model(&Invitation{}).Where("campaign_id = ?", campaignID).Select(`
		coalesce(sum(CASE WHEN rsvp = 'yes' THEN 1 ELSE 0 END), 0) AS expected,
		coalesce(sum(CASE WHEN rsvp = 'yes' THEN 1 + guests ELSE 0 END), 0) AS seats,
		coalesce(sum(CASE WHEN attended THEN 1 ELSE 0 END), 0) AS arrived,
		coalesce(sum(CASE WHEN walk_in THEN 1 ELSE 0 END), 0) AS walk_ins`).Scan(&out).Error
	return out, err
}

// CheckinView is the guest a QR code names, for the rep's confirmation.
type CheckinView struct {
	CampaignID   int64
	CampaignName string
	InvitationID int64
	Name         string
	Company      string
	RSVP         string
	Guests       int
	Attended     bool
}

// CheckinByToken reads the guest behind a QR code's token.
func (s *Store) CheckinByToken(ctx context.Context, token string) (*CheckinView, error) {
	t, err := s.ResolveToken(ctx, TokenCheckin, token)
	if err != nil || t.InvitationID == nil {
		return nil, Errorf(ENOTFOUND, "this check-in code is not valid")
	}
	var v CheckinView
	err = s.db.WithContext(ctx).Table("invitations AS i").
		Select("i.campaign_id, k.name AS campaign_name, i.id AS invitation_id, c.name, c.company, i.rsvp, i.guests, i.attended").
		Joins("JOIN customers c ON c.id = i.customer_id").Joins("JOIN campaigns k ON k.id = i.campaign_id").
		Where("i.id = ?", *t.InvitationID).Scan(&v).Error
	if err != nil {
		return nil, err
	}
	if v.InvitationID == 0 {
		return nil, Errorf(ENOTFOUND, "this check-in code is not valid")
	}
	return &v, nil
}

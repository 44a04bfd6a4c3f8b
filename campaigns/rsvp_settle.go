package campaigns

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"github.com/rapport/rapport/config"
)

// Answers that change seats are decided under the event's row lock, which
// PostgreSQL holds until the commit is on disk. One transaction per answer
// therefore capped one event at about one answer per commit (~1,500/s
// here, 688/s measured with the rest of the request). Instead answers to
// one event are settled together (groupcommit.go): decided in arrival
// order under one lock and committed once. Capacity, the waitlist's order,
// idempotency and the once-only credit are the same as deciding them one
// by one (TestAnswersSettledTogetherMatchOneByOne checks batches against a
// plain model of the rules).

// answerReq is one guest's answer waiting to be settled.
type answerReq struct {
	invID, campaignID int64
	answer            string
	guests            int
}

// answerOut is what settling an answer did.
type answerOut struct {
	inv      Invitation // as it stands after the batch
	c        Campaign   // the event after the batch (seats taken)
	changed  bool
	promoted []int64
	err      error
}

// submitAnswer queues an answer and waits for its settlement.
func (s *Store) submitAnswer(ctx context.Context, r *answerReq) (answerOut, error) {
	out, err := s.answers.submit(ctx, r.campaignID, r, s.applyAnswers)
	if err != nil {
		return answerOut{}, err
	}
	return out, out.err
}

// applyAnswers decides a batch of answers to one event in order, in one
// transaction. An answer that breaks a rule (too many guests, replies
// closed) gets its own error; a database error fails the batch.
func (s *Store) applyAnswers(ctx context.Context, campaignID int64, batch []*answerReq) ([]answerOut, error) {
	if s.dialect == config.Postgres {
		return s.applyAnswersPipelined(ctx, campaignID, batch)
	}
	outs := make([]answerOut, len(batch))
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var c Campaign
		if err := tx.Take(&c, campaignID).Error; err != nil { // SQLite: the transaction holds the only write lock
			return notFound(err, "campaign", campaignID)
		}
		ids := make([]int64, 0, len(batch))
		for _, r := range batch {
			ids = append(ids, r.invID)
		}
		// The batch's invitations, how many wait and the last place in
		// line, in one round trip (with no rows nothing is decided, so
		// neither is needed).
		var rows []struct {
			Invitation `gorm:"embedded"`
			Waiting    int64
			LastSeq    int64
		}
		if err := tx.Model(&Invitation{}).Select(`*, (SELECT count(*) FROM invitations w WHERE w.campaign_id = ? AND w.rsvp = ?) AS waiting,
			(SELECT coalesce(max(w.waitlist_seq), 0) FROM invitations w WHERE w.campaign_id = ? AND w.rsvp = ?) AS last_seq`,
			campaignID, RSVPWaitlisted, campaignID, RSVPWaitlisted).Where("id IN ? AND campaign_id = ?", ids, campaignID).Find(&rows).Error; err != nil {
			return err
		}
		invs := make(map[int64]*Invitation, len(rows))
		var line waitLine
		for i := range rows {
			invs[rows[i].ID], line = &rows[i].Invitation, waitLine{rows[i].Waiting, rows[i].LastSeq}
		}
		credited, promoted, err := s.decideAnswers(&c, invs, line, batch, outs, gormAnswers{s, tx})
		if err != nil {
			return err
		}
		if err := s.enqueueSeats(tx, c.ID, promoted); err != nil {
			return err
		}
		if _, err := s.creditMany(tx, &c, credited, TriggerRSVPAnswered, CampaignSource(c.ID), "rsvp"); err != nil {
			return err
		}
		for i, r := range batch {
			if inv := invs[r.invID]; inv != nil {
				outs[i].inv, outs[i].c = *inv, c
			}
		}
		return nil
	})
	return outs, err
}

// answerIO is what deciding a batch reads and writes midway: the changed
// invitations (and the seat count), and the waitlist.
type answerIO interface {
	writeAnswers(invs map[int64]*Invitation, ids []int64, campaignID int64, seats *int64) error
	waitlist(campaignID int64) ([]Invitation, error)
}

// gormAnswers is answerIO in a GORM transaction.
type gormAnswers struct {
	s  *Store
	tx *gorm.DB
}

func (g gormAnswers) writeAnswers(invs map[int64]*Invitation, ids []int64, campaignID int64, seats *int64) error {
	return g.s.writeAnswers(g.tx, invs, ids, campaignID, seats)
}

func (g gormAnswers) waitlist(campaignID int64) ([]Invitation, error) {
	var rows []Invitation
	err := g.tx.Where("campaign_id = ? AND rsvp = ?", campaignID, RSVPWaitlisted).Order("waitlist_seq, id").Find(&rows).Error
	return rows, err
}

// waitLine is the event's waitlist as a batch finds it, read under the
// event's lock: how many wait, and the last place given (waitlist_seq).
type waitLine struct {
	waiting, lastSeq int64
}

// decideAnswers decides a batch's answers in arrival order against the
// event c (locked by the caller) and writes them through io. It returns the
// customers to credit and the guests promoted from the waitlist.
func (s *Store) decideAnswers(c *Campaign, invs map[int64]*Invitation, line waitLine, batch []*answerReq, outs []answerOut,
	io answerIO) (credited, promotedAll []int64, err error) {
	closes := c.RepliesCloseAt()
	closed := c.Status == StatusCancelled || c.Status == StatusClosed || (closes != nil && !s.now().Before(*closes))
	seats := c.SeatsTaken
	var dirty []int64 // invitations changed and not yet written
	isDirty := map[int64]bool{}
	markDirty := func(inv *Invitation) {
		if !isDirty[inv.ID] {
			isDirty[inv.ID] = true
			dirty = append(dirty, inv.ID)
		}
	}
	waiting := line.waiting
	// Places in line follow the last one given, read under the event's
	// lock: not a clock, which differs between web processes (or steps
	// back) and let a later answer go ahead of an earlier one.
	lastSeq := line.lastSeq
	// The waitlist, in order, is read once, the first time an answer
	// frees seats, and kept here for the rest of the batch; reading and
	// promoting through the database cost every such answer four round
	// trips (flush, seats, waitlist, one update per promotion).
	var wl []*Invitation
	wlLoaded := false
	// flush writes the changed invitations and the seat count.
	flush := func() error {
		var newSeats *int64
		if seats != c.SeatsTaken {
			newSeats = &seats
		}
		if err := io.writeAnswers(invs, dirty, c.ID, newSeats); err != nil {
			return err
		}
		dirty, isDirty = dirty[:0], map[int64]bool{}
		c.SeatsTaken = seats
		return nil
	}
	for i, r := range batch {
		inv := invs[r.invID]
		switch {
		case inv == nil:
			outs[i].err = Errorf(ENOTFOUND, "invitation %d not found", r.invID)
			continue
		case r.guests < 0 || r.guests > c.GuestsPerInvite:
			outs[i].err = &Error{Code: EINVALID, Message: "too many guests", Fields: map[string]string{
				"guests": "you may bring up to " + itoa(int64(c.GuestsPerInvite))}}
			continue
		case closed:
			outs[i].err = Errorf(ECONFLICT, "replies for %s are closed", c.Name)
			continue
		case sameAnswer(inv, r.answer, r.guests):
			continue
		}
		// A confirmed guest asking to bring more keeps the seat they hold
		// when the bigger party does not fit: releasing it first sent them
		// to the back of the waitlist and gave their seat away.
		if inv.RSVP == RSVPYes && r.answer == RSVPYes && r.guests > inv.Guests &&
			seats+int64(r.guests-inv.Guests) > int64(c.Capacity) {
			outs[i].err = &Error{Code: ECONFLICT, Message: noRoomForGuest(inv.Guests),
				Fields: map[string]string{"guests": "no room for another guest"}}
			continue
		}
		now := s.now()
		wasYes, wasWaiting, oldGuests := inv.RSVP == RSVPYes, inv.RSVP == RSVPWaitlisted, inv.Guests
		if wasYes {
			seats -= int64(1 + inv.Guests)
		}
		if r.answer == RSVPNo {
			inv.RSVP, inv.WaitlistSeq = RSVPNo, nil
		} else {
			ahead := int64(0) // those already waiting keep their turn
			if !wasYes {
				ahead = waiting
				if wasWaiting {
					ahead--
				}
			}
			if ahead == 0 && seats+1+int64(r.guests) <= int64(c.Capacity) {
				inv.RSVP, inv.WaitlistSeq = RSVPYes, nil
			} else if !wasWaiting {
				lastSeq++
				seq := lastSeq
				inv.RSVP, inv.WaitlistSeq = RSVPWaitlisted, &seq
			}
		}
		inv.Guests, inv.RSVPAt, inv.UpdatedAt = r.guests, &now, now
		if inv.RSVP == RSVPYes {
			seats += int64(1 + r.guests)
		}
		if wasWaiting && inv.RSVP != RSVPWaitlisted {
			waiting--
		} else if !wasWaiting && inv.RSVP == RSVPWaitlisted {
			waiting++
		}
		markDirty(inv)
		outs[i].changed = true
		credited = append(credited, inv.CustomerID)
		if wlLoaded { // keep the loaded waitlist as the answer left it
			if wasWaiting && inv.RSVP != RSVPWaitlisted {
				wl = slices.DeleteFunc(wl, func(w *Invitation) bool { return w.ID == inv.ID })
			} else if !wasWaiting && inv.RSVP == RSVPWaitlisted {
				at, _ := slices.BinarySearchFunc(wl, inv, byWaitlistPlace)
				wl = slices.Insert(wl, at, inv)
			}
		}
		if waiting > 0 && (wasYes || r.answer == RSVPNo || r.guests < oldGuests) {
			if !wlLoaded {
				// The database has the batch so far once flushed.
				if err := flush(); err != nil {
					return nil, nil, err
				}
				rows, err := io.waitlist(c.ID)
				if err != nil {
					return nil, nil, err
				}
				for k := range rows {
					w := invs[rows[k].ID]
					if w == nil {
						w = &rows[k]
						invs[w.ID] = w
					}
					wl = append(wl, w)
				}
				wlLoaded = true
			}
			// Freed seats go to those waiting, in order, stopping at the
			// first party that does not fit (as promoteWaitlist does).
			var promoted []int64
			for len(wl) > 0 && seats+int64(1+wl[0].Guests) <= int64(c.Capacity) {
				w := wl[0]
				wl = wl[1:]
				seats += int64(1 + w.Guests)
				w.RSVP, w.WaitlistSeq, w.UpdatedAt = RSVPYes, nil, now
				markDirty(w)
				promoted = append(promoted, w.ID)
			}
			waiting -= int64(len(promoted))
			promotedAll = append(promotedAll, promoted...)
			outs[i].promoted = promoted
		}
	}
	if err := flush(); err != nil {
		return nil, nil, err
	}
	return credited, promotedAll, nil
}

// noRoomForGuest says why a confirmed guest cannot bring more, and that
// their seat is kept as it was.
func noRoomForGuest(guests int) string {
	kept := "your seat is kept"
	switch guests {
	case 0:
	case 1:
		kept = "your seat and your guest's are kept"
	default:
		kept = "your seat and your " + itoa(int64(guests)) + " guests' are kept"
	}
	return "there is no room for another guest: " + kept
}

// byWaitlistPlace orders waiting guests as the waitlist does: by
// waitlist_seq, then id.
func byWaitlistPlace(a, b *Invitation) int {
	if c := cmp.Compare(*a.WaitlistSeq, *b.WaitlistSeq); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// writeAnswers writes the RSVP columns of changed invitations and, when
// seats is not nil, the event's seat count, a row at a time (SQLite: one
// writer anyway; PostgreSQL goes through answersSQL).
func (s *Store) writeAnswers(tx *gorm.DB, invs map[int64]*Invitation, ids []int64, campaignID int64, seats *int64) error {
	for _, id := range ids {
		inv := invs[id]
		if err := tx.Model(&Invitation{}).Where("id = ?", id).Updates(map[string]any{"rsvp": inv.RSVP, "guests": inv.Guests,
			"waitlist_seq": inv.WaitlistSeq, "rsvp_at": inv.RSVPAt, "updated_at": inv.UpdatedAt}).Error; err != nil {
			return err
		}
	}
	if seats == nil {
		return nil
	}
	return tx.Model(&Campaign{}).Where("id = ?", campaignID).UpdateColumn("seats_taken", *seats).Error
}

// applyAnswersPipelined is applyAnswers on PostgreSQL in two round trips
// (pgx batches; seven statements, each a wait for a busy core, made the
// batch the slow part of a changing answer): the event, the batch's
// invitations and their customers locked and read, in that order, as
// check-ins take them, with the credits the customers hold from this
// event; then the answers, the credits and the commit. The customers are
// locked before it is known which answers change (nearly all: the same
// answer again is turned away before the batch), to save the round trip
// between. While guests wait for seats that round trip stays (see below),
// and reading the waitlist, when an answer frees seats, adds one.
func (s *Store) applyAnswersPipelined(ctx context.Context, campaignID int64, batch []*answerReq) ([]answerOut, error) {
	if err := s.guestColumns(); err != nil {
		return nil, err
	}
	gq := &s.guestQuery
	ids := make([]int64, len(batch))
	for i, r := range batch {
		ids[i] = r.invID
	}
	outs := make([]answerOut, len(batch))
	err := s.withPgConn(ctx, func(conn *pgx.Conn) error {
		var c Campaign
		found := false
		invs := map[int64]*Invitation{}
		var line waitLine
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		b.Queue(`SELECT `+gq.campCols+` FROM campaigns c WHERE c.id = $1 FOR UPDATE`, campaignID)
		// The batch's invitations are locked in id order, as check-in
		// batches take them. By id alone: with "AND campaign_id = $1" the
		// planner, its statistics from before the send, also read every
		// entry of the event in the (campaign, customer) index, 1.4 of a
		// statement's 2.4 ms at 8,500 guests. Each id came from a guest of
		// this event; the event is checked below all the same.
		// How many wait and the last place given come with them, read
		// in one pass over those waiting.
		b.Queue(`SELECT `+gq.invCols+`, w.n, w.last FROM invitations i
			CROSS JOIN (SELECT count(*) AS n, coalesce(max(waitlist_seq), 0) AS last FROM invitations
				WHERE campaign_id = $1 AND rsvp = 'waitlisted') w
			WHERE i.id = ANY($2) ORDER BY i.id FOR UPDATE OF i`, campaignID, ids)
		// The batch's customers too, unless someone is waiting: then the
		// batch may promote guests outside it, whose invitations it must
		// write before it holds any customer (the email webhook takes an
		// invitation, then its customer), so they are locked after the
		// writes, as before.
		source := CampaignSource(campaignID)
		ofBatch := `(SELECT customer_id FROM invitations WHERE id = ANY($1))
			AND NOT EXISTS (SELECT 1 FROM invitations w WHERE w.campaign_id = $2 AND w.rsvp = 'waitlisted')`
		b.Queue(`SELECT id, level FROM customers WHERE id IN `+ofBatch+` ORDER BY id FOR UPDATE`, ids, campaignID)
		// Every credit key from this event ends in its source (rulesFor).
		b.Queue(`SELECT customer_id, credit_key FROM level_ledger WHERE customer_id IN `+ofBatch+` AND right(credit_key, $3) = $4`,
			ids, campaignID, len(source)+1, "|"+source)
		var cur []customerLevel
		var done []heldCredit
		if err := sendBatch(ctx, conn, b, 1, func(br pgx.BatchResults) error {
			rows, _ := br.Query()
			if _, err := pgx.ForEachRow(rows, fieldPtrs(&c, gq.camp), func() error { found = true; return nil }); err != nil {
				return err
			}
			rows, _ = br.Query()
			defer rows.Close()
			for rows.Next() {
				inv := &Invitation{}
				if err := rows.Scan(append(fieldPtrs(inv, gq.inv), &line.waiting, &line.lastSeq)...); err != nil {
					return err
				}
				if inv.CampaignID == campaignID {
					invs[inv.ID] = inv
				}
			}
			if err := rows.Err(); err != nil {
				return err
			}
			var err error
			cur, done, err = readLevelsAndHeldCredits(br)
			return err
		}); err != nil {
			return err
		}
		if !found {
			return Errorf(ENOTFOUND, "campaign %d not found", campaignID)
		}
		io := &pgAnswers{ctx: ctx, conn: conn, cols: gq, pending: &pgx.Batch{}}
		credited, promoted, err := s.decideAnswers(&c, invs, line, batch, outs, io)
		if err != nil {
			return err
		}
		b = io.pending
		if len(promoted) > 0 {
			b.Queue(seatNoticesSQL, s.seatNoticeArgs(c.ID, promoted)...)
		}
		if rules, keys := rulesFor(&c, TriggerRSVPAnswered, source); len(rules) > 0 && len(credited) > 0 {
			slices.Sort(credited)
			credited = slices.Compact(credited)
			if len(cur) == 0 { // not locked above, someone waiting: after the writes
				nExec := b.Len()
				queueLockAndHeldCredits(b, credited, keys)
				if err := sendBatch(ctx, conn, b, nExec, func(br pgx.BatchResults) error {
					var err error
					cur, done, err = readLevelsAndHeldCredits(br)
					return err
				}); err != nil {
					return err
				}
				b = &pgx.Batch{}
			}
			// Only those whose answer changed are credited.
			cur = slices.DeleteFunc(cur, func(l customerLevel) bool { _, ok := slices.BinarySearch(credited, l.ID); return !ok })
			plan, err := planCredits(rules, cur, done, source, "rsvp", s.now())
			if err != nil {
				return err
			}
			queueCredits(b, plan)
		}
		b.Queue("COMMIT")
		if err := sendBatch(ctx, conn, b, b.Len(), nil); err != nil {
			return err
		}
		for i, r := range batch {
			if inv := invs[r.invID]; inv != nil {
				outs[i].inv, outs[i].c = *inv, c
			}
		}
		return nil
	})
	return outs, err
}

// pgAnswers is answerIO over pgx: writes wait in pending and go with the
// next read or the commit.
type pgAnswers struct {
	ctx     context.Context
	conn    *pgx.Conn
	cols    *guestQuery
	pending *pgx.Batch
}

func (p *pgAnswers) writeAnswers(invs map[int64]*Invitation, ids []int64, campaignID int64, seats *int64) error {
	if len(ids) > 0 || seats != nil {
		q, args := answersSQL(invs, ids, campaignID, seats)
		p.pending.Queue(q, args...)
	}
	return nil
}

func (p *pgAnswers) waitlist(campaignID int64) ([]Invitation, error) {
	b := p.pending
	p.pending = &pgx.Batch{}
	nExec := b.Len()
	b.Queue(`SELECT `+p.cols.invCols+` FROM invitations i WHERE i.campaign_id = $1 AND i.rsvp = 'waitlisted'
		ORDER BY i.waitlist_seq, i.id`, campaignID)
	var out []Invitation
	err := sendBatch(p.ctx, p.conn, b, nExec, func(br pgx.BatchResults) error {
		rows, _ := br.Query()
		defer rows.Close()
		for rows.Next() {
			var inv Invitation
			if err := rows.Scan(fieldPtrs(&inv, p.cols.inv)...); err != nil {
				return err
			}
			out = append(out, inv)
		}
		return rows.Err()
	})
	return out, err
}

// answersSQL writes changed invitations' RSVP columns and, when seats is
// not nil, the event's seat count, in one PostgreSQL statement.
func answersSQL(invs map[int64]*Invitation, ids []int64, campaignID int64, seats *int64) (string, []any) {
	n := len(ids)
	rsvp, guests, seq := make([]string, n), make([]int32, n), make([]*int64, n)
	answered, at := make([]*time.Time, n), make([]time.Time, n)
	for i, id := range ids {
		inv := invs[id]
		rsvp[i], guests[i], seq[i], answered[i], at[i] = inv.RSVP, int32(inv.Guests), inv.WaitlistSeq, inv.RSVPAt, inv.UpdatedAt.UTC()
	}
	// A guest promoted from the waitlist keeps the time they answered.
	q := `UPDATE invitations AS i SET rsvp = v.rsvp, guests = v.guests, waitlist_seq = v.seq, rsvp_at = v.answered, updated_at = v.at
		FROM unnest($1::bigint[], $2::text[], $3::int[], $4::bigint[], $5::timestamptz[], $6::timestamptz[]) AS v(id, rsvp, guests, seq, answered, at)
		WHERE i.id = v.id`
	args := []any{ids, rsvp, guests, seq, answered, at}
	if seats != nil { // the seat count in the same statement
		q = `WITH answers AS (` + q + ` RETURNING 1) UPDATE campaigns SET seats_taken = $7 WHERE id = $8`
		args = append(args, *seats, campaignID)
	}
	return q, args
}

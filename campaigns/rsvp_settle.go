package campaigns

import (
	"cmp"
	"context"
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

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
	outs := make([]answerOut, len(batch))
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var c Campaign
		q := tx.Model(&Campaign{})
		if s.dialect == config.Postgres {
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		if err := q.Take(&c, campaignID).Error; err != nil {
			return notFound(err, "campaign", campaignID)
		}
		ids := make([]int64, 0, len(batch))
		for _, r := range batch {
			ids = append(ids, r.invID)
		}
		// The batch's invitations and how many wait, in one round trip
		// (with no rows nothing is decided, so the count is not needed).
		var rows []struct {
			Invitation `gorm:"embedded"`
			Waiting    int64
		}
		if err := tx.Model(&Invitation{}).Select("*, (SELECT count(*) FROM invitations w WHERE w.campaign_id = ? AND w.rsvp = ?) AS waiting",
			campaignID, RSVPWaitlisted).Where("id IN ? AND campaign_id = ?", ids, campaignID).Find(&rows).Error; err != nil {
			return err
		}
		invs := make(map[int64]*Invitation, len(rows))
		var waiting int64
		for i := range rows {
			invs[rows[i].ID], waiting = &rows[i].Invitation, rows[i].Waiting
		}
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
		var credited, promotedAll []int64
		var lastSeq int64 // waitlist places strictly in arrival order, even within one clock tick
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
			if err := s.writeAnswers(tx, invs, dirty, c.ID, newSeats); err != nil {
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
					seq := max(now.UnixNano(), lastSeq+1)
					lastSeq = seq
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
						return err
					}
					var rows []Invitation
					if err := tx.Where("campaign_id = ? AND rsvp = ?", c.ID, RSVPWaitlisted).Order("waitlist_seq, id").Find(&rows).Error; err != nil {
						return err
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
			return err
		}
		if err := s.enqueueSeats(tx, c.ID, promotedAll); err != nil {
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

// byWaitlistPlace orders waiting guests as the waitlist does: by
// waitlist_seq, then id.
func byWaitlistPlace(a, b *Invitation) int {
	if c := cmp.Compare(*a.WaitlistSeq, *b.WaitlistSeq); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// writeAnswers writes the RSVP columns of changed invitations and, when
// seats is not nil, the event's seat count: one statement on PostgreSQL, a
// row at a time on SQLite (one writer anyway).
func (s *Store) writeAnswers(tx *gorm.DB, invs map[int64]*Invitation, ids []int64, campaignID int64, seats *int64) error {
	if s.dialect != config.Postgres || len(ids) == 0 {
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
	n := len(ids)
	rsvp, guests, seq := make([]string, n), make([]int32, n), make([]*int64, n)
	answered, at := make([]*time.Time, n), make([]time.Time, n)
	for i, id := range ids {
		inv := invs[id]
		rsvp[i], guests[i], seq[i], answered[i], at[i] = inv.RSVP, int32(inv.Guests), inv.WaitlistSeq, inv.RSVPAt, inv.UpdatedAt.UTC()
	}
	// A guest promoted from the waitlist keeps the time they answered.
	q := `UPDATE invitations AS i SET rsvp = v.rsvp, guests = v.guests, waitlist_seq = v.seq, rsvp_at = v.answered, updated_at = v.at
		FROM unnest(?::bigint[], ?::text[], ?::int[], ?::bigint[], ?::timestamptz[], ?::timestamptz[]) AS v(id, rsvp, guests, seq, answered, at)
		WHERE i.id = v.id`
	args := []any{pgArray{ids}, pgArray{rsvp}, pgArray{guests}, pgArray{seq}, pgArray{answered}, pgArray{at}}
	if seats != nil { // the seat count in the same round trip
		q = `WITH answers AS (` + q + ` RETURNING 1) UPDATE campaigns SET seats_taken = ? WHERE id = ?`
		args = append(args, *seats, campaignID)
	}
	return tx.Exec(q, args...).Error
}

package campaigns

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/rapport/rapport/config"
)

// RSVP answers.
const (
	RSVPNone       = "none"
	RSVPYes        = "yes"
	RSVPNo         = "no"
	RSVPWaitlisted = "waitlisted"
)

// RSVPView is what the public RSVP page shows a guest.
type RSVPView struct {
	Invitation Invitation
	Campaign   Campaign
	Name       string
	Position   int64 // place on the waitlist, from 1
	SeatsTaken int64
	Open       bool // answers may still change
	ClosesAt   *time.Time
}

// repliesCloseAt is the RSVP deadline, or the start of the event.
func (c *Campaign) RepliesCloseAt() *time.Time {
	if c.RSVPDeadline != nil {
		return c.RSVPDeadline
	}
	return c.StartsAt
}

func (s *Store) rsvpView(tx *gorm.DB, inv *Invitation, c *Campaign) (*RSVPView, error) {
	v := &RSVPView{Invitation: *inv, Campaign: *c, ClosesAt: c.RepliesCloseAt()}
	v.Open = c.Status != StatusCancelled && c.Status != StatusClosed && (v.ClosesAt == nil || s.now().Before(*v.ClosesAt))
	if err := tx.Model(&Customer{}).Where("id = ?", inv.CustomerID).Pluck("name", &v.Name).Error; err != nil {
		return nil, err
	}
	v.SeatsTaken = c.SeatsTaken
	if inv.RSVP == RSVPWaitlisted && inv.WaitlistSeq != nil {
		if err := tx.Model(&Invitation{}).Where("campaign_id = ? AND rsvp = ? AND waitlist_seq <= ?", c.ID, RSVPWaitlisted, *inv.WaitlistSeq).
			Count(&v.Position).Error; err != nil {
			return nil, err
		}
	}
	return v, nil
}

// RSVPByToken opens the RSVP page of a link.
func (s *Store) RSVPByToken(ctx context.Context, token string) (*RSVPView, error) {
	t, err := s.ResolveToken(ctx, TokenRSVP, token)
	if err != nil || t.InvitationID == nil {
		return nil, Errorf(ENOTFOUND, "this link is not valid; it may have been mistyped or cut short")
	}
	var inv Invitation
	if err := s.db.WithContext(ctx).Take(&inv, *t.InvitationID).Error; err != nil {
		return nil, notFound(err, "invitation", *t.InvitationID)
	}
	c, err := s.Campaign(ctx, inv.CampaignID)
	if err != nil {
		return nil, err
	}
	return s.rsvpView(s.db.WithContext(ctx), &inv, c)
}

// AnswerResult says what an answer did.
type AnswerResult struct {
	View     *RSVPView
	Changed  bool
	Promoted []int64 // invitations moved from the waitlist to a seat
}

// Answer records a guest's yes or no with guests. Capacity counts seats
// (the guest and their guests) and is enforced inside the transaction,
// with the campaign row locked so concurrent answers queue: when the room
// is full a yes joins the waitlist in arrival order; a no (or fewer
// guests) frees seats for those waiting, first come first served. The
// same answer twice changes nothing. An answer credits the customer by the
// campaign's rsvp rule, once.
func (s *Store) Answer(ctx context.Context, token, answer string, guests int) (*AnswerResult, error) {
	t, err := s.ResolveToken(ctx, TokenRSVP, token)
	if err != nil || t.InvitationID == nil {
		return nil, Errorf(ENOTFOUND, "this link is not valid; it may have been mistyped or cut short")
	}
	if answer != RSVPYes && answer != RSVPNo {
		return nil, &Error{Code: EINVALID, Message: "answer yes or no", Fields: map[string]string{"answer": "must be yes or no"}}
	}
	if answer == RSVPNo {
		guests = 0
	}
	res := &AnswerResult{}
	// The same answer again (a second click, a mail client's prefetch)
	// changes nothing and takes no lock.
	var cur Invitation
	if err := s.db.WithContext(ctx).Take(&cur, *t.InvitationID).Error; err != nil {
		return nil, notFound(err, "invitation", *t.InvitationID)
	}
	if sameAnswer(&cur, answer, guests) {
		c, err := s.Campaign(ctx, cur.CampaignID)
		if err != nil {
			return nil, err
		}
		if guests >= 0 && guests <= c.GuestsPerInvite {
			res.View, err = s.rsvpView(s.db.WithContext(ctx), &cur, c)
			return res, err
		}
	}
	// Every answer to one event queues on the event's row lock until its
	// transaction commits, so the page's figures are read after the commit,
	// outside the lock (RSVP answers changing seats: see README, Performance).
	var c Campaign
	var inv Invitation
	err = s.tx(ctx, func(tx *gorm.DB) error {
		q := tx.Model(&Campaign{})
		if s.dialect == config.Postgres {
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		if err := tx.Take(&inv, *t.InvitationID).Error; err != nil {
			return notFound(err, "invitation", *t.InvitationID)
		}
		if err := q.Take(&c, inv.CampaignID).Error; err != nil {
			return err
		}
		if err := tx.Take(&inv, *t.InvitationID).Error; err != nil { // re-read under the lock
			return err
		}
		if guests < 0 || guests > c.GuestsPerInvite {
			return &Error{Code: EINVALID, Message: "too many guests", Fields: map[string]string{
				"guests": "you may bring up to " + itoa(int64(c.GuestsPerInvite))}}
		}
		closes := c.RepliesCloseAt()
		if c.Status == StatusCancelled || c.Status == StatusClosed || (closes != nil && !s.now().Before(*closes)) {
			return Errorf(ECONFLICT, "replies for %s are closed", c.Name)
		}
		if sameAnswer(&inv, answer, guests) {
			return nil
		}
		now := s.now()
		fields := map[string]any{"guests": guests, "rsvp_at": now, "updated_at": now}
		wasYes := inv.RSVP == RSVPYes
		if answer == RSVPNo {
			fields["rsvp"], fields["waitlist_seq"] = RSVPNo, nil
		} else {
			// Seats held by the others: the event's count less this guest's.
			taken := c.SeatsTaken
			if wasYes {
				taken -= int64(1 + inv.Guests)
			}
			ahead := int64(0)
			if !wasYes {
				// Those already waiting keep their turn.
				if err := tx.Model(&Invitation{}).Where("campaign_id = ? AND rsvp = ? AND id <> ?", c.ID, RSVPWaitlisted, inv.ID).Count(&ahead).Error; err != nil {
					return err
				}
			}
			if ahead == 0 && taken+1+int64(guests) <= int64(c.Capacity) {
				fields["rsvp"], fields["waitlist_seq"] = RSVPYes, nil
			} else if inv.RSVP != RSVPWaitlisted {
				fields["rsvp"], fields["waitlist_seq"] = RSVPWaitlisted, now.UnixNano()
			}
		}
		if err := tx.Model(&Invitation{}).Where("id = ?", inv.ID).Updates(fields).Error; err != nil {
			return err
		}
		seats := c.SeatsTaken
		if wasYes {
			seats -= int64(1 + inv.Guests)
		}
		if fields["rsvp"] == RSVPYes || (fields["rsvp"] == nil && wasYes) {
			seats += int64(1 + guests)
		}
		if seats != c.SeatsTaken {
			if err := tx.Model(&Campaign{}).Where("id = ?", c.ID).UpdateColumn("seats_taken", seats).Error; err != nil {
				return err
			}
			c.SeatsTaken = seats
		}
		res.Changed = true
		if err := s.credit(tx, &c, inv.CustomerID, TriggerRSVPAnswered, CampaignSource(c.ID), "rsvp"); err != nil {
			return err
		}
		if wasYes || answer == RSVPNo || guests < inv.Guests {
			if res.Promoted, err = s.promoteWaitlist(tx, &c); err != nil {
				return err
			}
			if err := s.enqueueSeats(tx, c.ID, res.Promoted); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	db := s.db.WithContext(ctx)
	if err := db.Take(&inv, inv.ID).Error; err != nil {
		return nil, err
	}
	if res.View, err = s.rsvpView(db, &inv, &c); err != nil {
		return nil, err
	}
	return res, nil
}

// promoteWaitlist gives freed seats to those waiting, in arrival order,
// stopping at the first party that does not fit.
// The caller holds the event's row lock (or has just updated the row).
func (s *Store) promoteWaitlist(tx *gorm.DB, c *Campaign) ([]int64, error) {
	var taken int64
	if err := tx.Model(&Campaign{}).Where("id = ?", c.ID).Pluck("seats_taken", &taken).Error; err != nil {
		return nil, err
	}
	var waiting []Invitation
	if err := tx.Where("campaign_id = ? AND rsvp = ?", c.ID, RSVPWaitlisted).Order("waitlist_seq, id").Find(&waiting).Error; err != nil {
		return nil, err
	}
	var promoted []int64
	for _, w := range waiting {
		need := int64(1 + w.Guests)
		if taken+need > int64(c.Capacity) {
			break
		}
		if err := tx.Model(&Invitation{}).Where("id = ?", w.ID).
			Updates(map[string]any{"rsvp": RSVPYes, "waitlist_seq": nil, "updated_at": s.now()}).Error; err != nil {
			return nil, err
		}
		taken += need
		promoted = append(promoted, w.ID)
	}
	if len(promoted) > 0 {
		if err := tx.Model(&Campaign{}).Where("id = ?", c.ID).UpdateColumn("seats_taken", taken).Error; err != nil {
			return nil, err
		}
	}
	c.SeatsTaken = taken
	return promoted, nil
}

func sameAnswer(inv *Invitation, answer string, guests int) bool {
	return (answer == RSVPNo && inv.RSVP == RSVPNo) ||
		(answer == RSVPYes && (inv.RSVP == RSVPYes || inv.RSVP == RSVPWaitlisted) && inv.Guests == guests)
}

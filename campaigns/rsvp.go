package campaigns

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

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

func (s *Store) rsvpView(db *gorm.DB, inv *Invitation, c *Campaign, name string) (*RSVPView, error) {
	v := &RSVPView{Invitation: *inv, Campaign: *c, Name: name, ClosesAt: c.RepliesCloseAt(), SeatsTaken: c.SeatsTaken}
	v.Open = c.Status != StatusCancelled && c.Status != StatusClosed && (v.ClosesAt == nil || s.now().Before(*v.ClosesAt))
	if inv.RSVP == RSVPWaitlisted && inv.WaitlistSeq != nil {
		if err := db.Model(&Invitation{}).Where("campaign_id = ? AND rsvp = ? AND waitlist_seq <= ?", c.ID, RSVPWaitlisted, *inv.WaitlistSeq).
			Count(&v.Position).Error; err != nil {
			return nil, err
		}
	}
	return v, nil
}

// guest is an invitation found by its RSVP link, with its event and the
// guest's name.
type guest struct {
	Invitation
	Campaign     Campaign
	CustomerName string
}

// guestQuery reads a guest in one query, scanned straight into the
// structs' fields: GORM's generic scan of these ~70 columns was a fifth of
// an RSVP request's CPU. The columns come from the GORM models, so a new
// field is read without touching this; TestGuestByTokenReadsEveryField
// checks the result against GORM's. A claim (invitations.go) returns its
// rows through the same invitation columns.
type guestQuery struct {
	once              sync.Once
	sql, bySet        string  // by a link set (links.go), by a stored token; in the store's dialect
	inv               [][]int // struct field index per invitation column
	camp              [][]int
	invCols, campCols string // the select lists, over aliases i and c
	fails             error
}

// fieldPtrs points at the fields of the struct v points to, for a scan.
func fieldPtrs(v any, idx [][]int) []any {
	out := make([]any, len(idx))
	fieldPtrsInto(out, v, idx)
	return out
}

// fieldPtrsInto is fieldPtrs into dst, for a scan of many rows.
func fieldPtrsInto(dst []any, v any, idx [][]int) {
	rv := reflect.ValueOf(v).Elem()
	for i, ix := range idx {
		if len(ix) == 1 {
			dst[i] = rv.Field(ix[0]).Addr().Interface()
		} else {
			dst[i] = rv.FieldByIndex(ix).Addr().Interface()
		}
	}
}

func (s *Store) guestColumns() error {
	q := &s.guestQuery
	q.once.Do(func() {
		cols := func(model any, alias string) ([]string, [][]int, error) {
			st := &gorm.Statement{DB: s.db}
			if err := st.Parse(model); err != nil {
				return nil, nil, err
			}
			var sel []string
			var idx [][]int
			for _, f := range st.Schema.Fields {
				if f.DBName == "" {
					continue
				}
				col := alias + "." + f.DBName
				// NULL into a plain string, number or bool would fail the scan.
				switch f.FieldType.Kind() {
				case reflect.String:
					col = "COALESCE(" + col + ", '')"
				case reflect.Int, reflect.Int16, reflect.Int32, reflect.Int64:
					col = "COALESCE(" + col + ", 0)"
				case reflect.Bool:
					col = "COALESCE(" + col + ", false)"
				}
				sel = append(sel, col)
				idx = append(idx, f.StructField.Index)
			}
			return sel, idx, nil
		}
		invSel, inv, err := cols(&Invitation{}, "i")
		if err != nil {
			q.fails = err
			return
		}
		campSel, camp, err := cols(&Campaign{}, "c")
		if err != nil {
			q.fails = err
			return
		}
		q.inv, q.camp = inv, camp
		q.invCols, q.campCols = strings.Join(invSel, ", "), strings.Join(campSel, ", ")
		q.sql = "SELECT " + strings.Join(invSel, ", ") + ", " + strings.Join(campSel, ", ") + `, cu.name FROM public_tokens t
			JOIN invitations i ON i.id = t.invitation_id JOIN campaigns c ON c.id = i.campaign_id JOIN customers cu ON cu.id = i.customer_id
			WHERE t.token_hash = $1 AND t.kind = $2 AND t.expires_at > $3`
		q.sql = s.rebind(q.sql)
		q.bySet = s.rebind("SELECT " + strings.Join(invSel, ", ") + ", " + strings.Join(campSel, ", ") + `, cu.name FROM link_sets ls
			JOIN invitations i ON i.id = ls.invitation_id JOIN campaigns c ON c.id = i.campaign_id JOIN customers cu ON cu.id = i.customer_id
			WHERE ls.id = $1 AND ls.rsvp_hash = $2 AND ls.created_at > $3`)
	})
	return q.fails
}

// guestByToken reads a link's invitation, its event and the guest's name
// in one query: every RSVP request starts here.
func (s *Store) guestByToken(ctx context.Context, token string) (*guest, error) {
	nf := badLink()
	token = strings.TrimSpace(token)
	if len(token) < 26 || len(token) > 64 {
		return nil, nf
	}
	if err := s.guestColumns(); err != nil {
		return nil, err
	}
	q := &s.guestQuery
	var g guest
	dest := append(append(fieldPtrs(&g.Invitation, q.inv), fieldPtrs(&g.Campaign, q.camp)...), &g.CustomerName)
	// Not through GORM, which would rebuild this long statement's text on
	// every call.
	query, args := q.sql, []any{HashSecret(token), TokenRSVP, s.now()}
	if l, ok := parseLink(TokenRSVP, token); ok {
		query, args = q.bySet, []any{l.setID, l.hash, s.now().Add(-tokenLifetime(TokenRSVP))}
	}
	var err error
	if s.dialect == config.Postgres {
		// pgx scans the ~70 columns itself; database/sql's conversions were
		// a third of this lookup's CPU, the biggest part of a changing answer.
		err = s.withPgConn(ctx, func(c *pgx.Conn) error { return c.QueryRow(ctx, query, args...).Scan(dest...) })
	} else {
		err = s.sqlDB.QueryRowContext(ctx, query, args...).Scan(dest...)
	}
	if errors.Is(err, sql.ErrNoRows) || errors.Is(err, pgx.ErrNoRows) {
		return nil, nf
	}
	if err != nil {
		return nil, err
	}
	return &g, nil
}

// RSVPByToken opens the RSVP page of a link.
func (s *Store) RSVPByToken(ctx context.Context, token string) (*RSVPView, error) {
	g, err := s.guestByToken(ctx, token)
	if err != nil {
		return nil, err
	}
	return s.rsvpView(s.db.WithContext(ctx), &g.Invitation, &g.Campaign, g.CustomerName)
}

// AnswerResult says what an answer did.
type AnswerResult struct {
	View     *RSVPView
	Changed  bool
	Promoted []int64 // invitations moved from the waitlist to a seat
}

// Answer records a guest's yes or no with guests. Capacity counts seats
// (the guest and their guests) and is enforced with the event's row
// locked, so answers are decided one after another: when the room is full
// a yes joins the waitlist in arrival order; a no (or fewer guests) frees
// seats for those waiting, first come first served. The same answer twice
// changes nothing. An answer credits the customer by the campaign's rsvp
// rule, once.
//
// Answers to one event are settled in batches (rsvp_settle.go): one
// transaction takes the event's lock once for every answer waiting,
// instead of each answer queueing for it until its own commit.
func (s *Store) Answer(ctx context.Context, token, answer string, guests int) (*AnswerResult, error) {
	g, err := s.guestByToken(ctx, token)
	if err != nil {
		return nil, err
	}
	if answer != RSVPYes && answer != RSVPNo {
		return nil, &Error{Code: EINVALID, Message: "answer yes or no", Fields: map[string]string{"answer": "must be yes or no"}}
	}
	if answer == RSVPNo {
		guests = 0
	}
	// The same answer again (a second click, a mail client's prefetch)
	// changes nothing and takes no lock.
	if sameAnswer(&g.Invitation, answer, guests) {
		if guests >= 0 && guests <= g.Campaign.GuestsPerInvite {
			v, err := s.rsvpView(s.db.WithContext(ctx), &g.Invitation, &g.Campaign, g.CustomerName)
			return &AnswerResult{View: v}, err
		}
	}
	out, err := s.submitAnswer(ctx, &answerReq{invID: g.ID, campaignID: g.CampaignID, answer: answer, guests: guests})
	if err != nil {
		return nil, err
	}
	res := &AnswerResult{Changed: out.changed, Promoted: out.promoted}
	if res.View, err = s.rsvpView(s.db.WithContext(ctx), &out.inv, &out.c, g.CustomerName); err != nil {
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

package campaigns

import (
	"context"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gorm.io/gorm"
)

// surveyDue is when an event's survey goes out: by default the next
// morning at 9:00 in the event's zone; or a duration after the end ("24h").
func (c *Campaign) surveyDue() *time.Time {
	if c.EndsAt == nil {
		return nil
	}
	if d, err := time.ParseDuration(c.SurveyAfter); err == nil && d > 0 {
		t := c.EndsAt.Add(d)
		return &t
	}
	end := c.EndsAt.In(c.Location())
	next := time.Date(end.Year(), end.Month(), end.Day()+1, 9, 0, 0, 0, c.Location()).UTC()
	return &next
}

// EnqueueSurveys queues each finished event's NPS survey for everyone who
// attended, once, when its time comes.
func (s *Store) EnqueueSurveys(ctx context.Context) (int64, error) {
	now := s.now()
	var cs []Campaign
	if err := s.db.WithContext(ctx).Where("kind = ? AND status IN ? AND ends_at < ? AND ends_at > ?", KindEvent,
		[]Status{StatusSending, StatusSent, StatusClosed}, now, now.Add(-30*24*time.Hour)).Find(&cs).Error; err != nil {
		return 0, err
	}
	var total int64
	for i := range cs {
		due := cs[i].surveyDue()
		if due == nil || now.Before(*due) {
			continue
		}
		n, err := s.enqueueFollowups(s.db.WithContext(ctx), cs[i].ID, FollowSurvey, "survey", now, "attended")
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// SurveyView is what the survey page shows.
type SurveyView struct {
	InvitationID int64
	CampaignName string
	Score        *int
	Comment      string
	Open         bool // the answer may still change
}

// surveyWindow is how long an answer may change after it is first given.
const surveyWindow = 7 * 24 * time.Hour

// AnswerSurvey records a 0–10 score and/or a comment from a survey link:
// one answer per invitation, changeable for 7 days. The survey rule is
// credited (once, whatever the changes) when a score is recorded; a
// comment alone, or a form sent again unchanged, credits nothing.
func (s *Store) AnswerSurvey(ctx context.Context, token string, score *int, comment *string) (*SurveyView, error) {
	t, err := s.ResolveToken(ctx, TokenSurvey, token)
	if err != nil || t.InvitationID == nil {
		return nil, Errorf(ENOTFOUND, "this survey link is not valid")
	}
	if score != nil && (*score < 0 || *score > 10) {
		return nil, errScore()
	}
	// The database refuses text that is not UTF-8, or holds a NUL: named
	// here, rather than a failed transaction that loses the score too.
	if comment != nil && (!utf8.ValidString(*comment) || strings.IndexByte(*comment, 0) >= 0) {
		return nil, &Error{Code: EINVALID, Message: "the comment is not valid text", Fields: map[string]string{"comment": "is not valid UTF-8 text"}}
	}
	var out SurveyView
	err = s.tx(ctx, func(tx *gorm.DB) error {
		var inv Invitation
		if err := tx.Take(&inv, *t.InvitationID).Error; err != nil {
			return notFound(err, "invitation", *t.InvitationID)
		}
		var c Campaign
		if err := tx.Take(&c, inv.CampaignID).Error; err != nil {
			return err
		}
		now := s.now()
		open := inv.NPSAt == nil || now.Before(inv.NPSAt.Add(surveyWindow))
		fields := map[string]any{}
		scored := score != nil && open && (inv.NPSScore == nil || *inv.NPSScore != *score)
		if scored {
			fields["nps_score"] = *score
			if inv.NPSAt == nil {
				fields["nps_at"] = now
			}
			inv.NPSScore = score
		}
		if comment != nil && open {
			if cm := surveyComment(*comment); cm != inv.NPSComment {
				fields["nps_comment"], inv.NPSComment = cm, cm
			}
		}
		if len(fields) > 0 {
			fields["updated_at"] = now
			if err := tx.Model(&Invitation{}).Where("id = ?", inv.ID).Updates(fields).Error; err != nil {
				return err
			}
		}
		if scored {
			if err := s.credit(tx, &c, inv.CustomerID, TriggerSurvey, CampaignSource(c.ID), "survey"); err != nil {
				return err
			}
		}
		out = SurveyView{InvitationID: inv.ID, CampaignName: c.Name, Score: inv.NPSScore, Comment: inv.NPSComment, Open: open}
		return nil
	})
	return &out, err
}

// ParseScore reads a score as a link or form sends it: "" is none, a whole
// number 0-10 is a score, anything else is an error naming the field.
func ParseScore(raw string) (*int, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 0 || n > 10 {
		return nil, errScore()
	}
	return &n, nil
}

func errScore() *Error {
	return &Error{Code: EINVALID, Message: "scores go from 0 to 10", Fields: map[string]string{"score": "must be a whole number from 0 to 10"}}
}

// SurveyCommentMax is how many characters of a survey comment are kept.
const SurveyCommentMax = 2000

// surveyComment is a comment as stored: trimmed, and cut to
// SurveyCommentMax characters. It counts characters, not bytes: a cut
// inside a character leaves text PostgreSQL refuses, and the score sent
// with the comment was lost with it.
func surveyComment(s string) string {
	s = strings.TrimSpace(s)
	n := 0
	for i := range s {
		if n == SurveyCommentMax {
			return strings.TrimRightFunc(s[:i], unicode.IsSpace)
		}
		n++
	}
	return s
}

// Detractor is a customer who scored 0–6, for their owner to call.
type Detractor struct {
	InvitationID int64      `json:"invitation_id"`
	CustomerID   int64      `json:"customer_id"`
	Name         string     `json:"name"`
	Email        string     `json:"email"`
	Phone        string     `json:"phone"`
	OwnerEmail   string     `json:"owner_email"`
	CampaignID   int64      `json:"campaign_id"`
	CampaignName string     `json:"campaign_name"`
	Score        int        `json:"score"`
	Comment      string     `json:"comment"`
	AnsweredAt   time.Time  `json:"answered_at"`
	FollowedUpAt *time.Time `json:"followed_up_at"`
	FollowedUpBy string     `json:"followed_up_by"`
}

// Detractors lists detractors, open ones first; ownerID narrows to a rep's
// customers; open to those not yet followed up.
func (s *Store) Detractors(ctx context.Context, ownerID *int64, open bool) ([]Detractor, error) {
	q := s.db.WithContext(ctx).Table("invitations AS i").
		Select("i.id AS invitation_id, i.customer_id, c.name, c.email, c.phone, coalesce(u.email, '') AS owner_email, " +
			"i.campaign_id, k.name AS campaign_name, i.nps_score AS score, i.nps_comment AS comment, i.nps_at AS answered_at, " +
			"i.followed_up_at, i.followed_up_by").
		Joins("JOIN customers c ON c.id = i.customer_id").Joins("JOIN campaigns k ON k.id = i.campaign_id").
		Joins("LEFT JOIN users u ON u.id = c.owner_id").
		Where("i.nps_score IS NOT NULL AND i.nps_score <= 6")
	if ownerID != nil {
		q = q.Where("c.owner_id = ?", *ownerID)
	}
	if open {
		q = q.Where("i.followed_up_at IS NULL")
	}
	var out []Detractor
	err := q.Order("i.followed_up_at IS NOT NULL, i.nps_at DESC").Limit(500).Scan(&out).Error
	return out, err
}

// MarkFollowedUp records that someone called a detractor (a score of 0-6)
// back. ownerID, for a rep, narrows it to their own customers, as the list
// is: another rep's detractor, like an invitation with no detractor score,
// is not found.
func (s *Store) MarkFollowedUp(ctx context.Context, invitationID int64, ownerID *int64, by string) error {
	q := s.db.WithContext(ctx).Model(&Invitation{}).
		Where("id = ? AND nps_score IS NOT NULL AND nps_score <= 6 AND followed_up_at IS NULL", invitationID)
	if ownerID != nil {
		q = q.Where("customer_id IN (SELECT id FROM customers WHERE owner_id = ?)", *ownerID)
	}
	res := q.Updates(map[string]any{"followed_up_at": s.now(), "followed_up_by": by})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return Errorf(ENOTFOUND, "no open follow-up %d", invitationID)
	}
	return nil
}

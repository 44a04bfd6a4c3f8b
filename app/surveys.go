package app

import (
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/rapport/rapport/campaigns"
)

// surveyPage records the score of a one-click link (?score=N) and thanks
// the guest, with room for a comment.
func (a *App) surveyPage(c *fiber.Ctx) error {
	score, err := campaigns.ParseScore(c.Query("score"))
	if err != nil {
		return err
	}
	v, err := a.store.AnswerSurvey(c.UserContext(), c.Params("token"), score, nil)
	if err != nil {
		return err
	}
	c.Set("Referrer-Policy", "no-referrer")
	return a.render(c, "pages/survey", fiber.Map{"Title": "Thank you", "V": v, "Token": c.Params("token"),
		"Scores": []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, "CommentMax": campaigns.SurveyCommentMax})
}

// surveyComment saves a score (no JavaScript needed) and/or a comment. A
// score that is sent but is not 0-10 is refused, naming it, rather than
// dropped while the comment is saved.
func (a *App) surveyComment(c *fiber.Ctx) error {
	score, err := campaigns.ParseScore(c.FormValue("score"))
	if err != nil {
		return err
	}
	comment := utils.CopyString(c.FormValue("comment"))
	v, err := a.store.AnswerSurvey(c.UserContext(), c.Params("token"), score, &comment)
	if err != nil {
		return err
	}
	return a.render(c, "pages/survey", fiber.Map{"Title": "Thank you", "V": v, "Token": c.Params("token"),
		"Scores": []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, "CommentMax": campaigns.SurveyCommentMax, "Saved": true})
}

// followupsPage lists detractors to call back: a rep sees their own
// customers, coordinators and admins everyone's.
func (a *App) followupsPage(c *fiber.Ctx) error {
	list, err := a.store.Detractors(c.UserContext(), repScope(principal(c)), c.Query("all") == "")
	if err != nil {
		return err
	}
	return a.render(c, "pages/followups", fiber.Map{"Title": "Follow-ups", "List": list, "All": c.Query("all") != ""})
}

// followedUpForm marks a detractor as called back: a rep only their own
// customers', as the list shows them.
func (a *App) followedUpForm(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	p := principal(c)
	if err := a.store.MarkFollowedUp(c.UserContext(), id, repScope(p), p.Name); err != nil {
		return err
	}
	return a.redirectWith(c, "/followups", "ok", "Marked as followed up.")
}

// repScope is the owner a rep's follow-ups are narrowed to; nil (everyone's)
// for the other roles. A rep without a user (none signs in that way today)
// owns no one.
func repScope(p *Principal) *int64 {
	if p.Role != campaigns.RoleRep {
		return nil
	}
	var id int64
	if p.User != nil {
		id = p.User.ID
	}
	return &id
}

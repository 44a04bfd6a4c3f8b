package campaigns

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// AnswerInput is one answer for SettleTogether.
type AnswerInput struct {
	Token, Answer string
	Guests        int
}

// AnswerOutcome is what SettleTogether did with one answer.
type AnswerOutcome struct {
	Changed bool
	Err     error
}

// SettleTogether settles answers to one event as a single batch, as the
// settler does when they arrive together, so tests can compare batches
// with answers decided one by one.
func (s *Store) SettleTogether(ctx context.Context, in []AnswerInput) ([]AnswerOutcome, error) {
	batch := make([]*answerReq, len(in))
	for i, a := range in {
		g, err := s.guestByToken(ctx, a.Token)
		if err != nil {
			return nil, err
		}
		guests := a.Guests
		if a.Answer == RSVPNo {
			guests = 0
		}
		batch[i] = &answerReq{invID: g.ID, campaignID: g.CampaignID, answer: a.Answer, guests: guests}
	}
	outs, err := s.applyAnswers(ctx, batch[0].campaignID, batch)
	if err != nil {
		return nil, err
	}
	res := make([]AnswerOutcome, len(outs))
	for i, o := range outs {
		res[i] = AnswerOutcome{Changed: o.changed, Err: o.err}
	}
	return res, nil
}

// GuestByToken is guestByToken for tests.
func (s *Store) GuestByToken(ctx context.Context, token string) (Invitation, Campaign, string, error) {
	g, err := s.guestByToken(ctx, token)
	if err != nil {
		return Invitation{}, Campaign{}, "", err
	}
	return g.Invitation, g.Campaign, g.CustomerName, nil
}

// TokenReads is how many times this store has read an API token from the
// database rather than from what it keeps.
func (s *Store) TokenReads() int64 { return s.tokenReads.Load() }

// ListenerName names the connection that hears of token changes.
const ListenerName = listenerName

// TokensLive says whether this store keeps the API tokens it finds now.
func (s *Store) TokensLive() bool { return s.tokensLive() }

// SetTokenHeartbeat shortens the token listener's heartbeat; call it before
// the first TokenBySecret.
func (s *Store) SetTokenHeartbeat(d time.Duration) { s.tokens.heartbeat = d }

// SetFreshLoadMin lowers the size a seed or import needs to take the fresh
// path (bulk.go), so tests can take it with a few hundred rows.
func (s *Store) SetFreshLoadMin(rows int) { s.freshMin = rows }

// SetImportHeartbeat sets how often a running import writes alive_at.
func (s *Store) SetImportHeartbeat(d time.Duration) { s.importBeat = d }

// FreshLoads is how many fresh loads this store has begun.
func (s *Store) FreshLoads() int64 { return s.freshLoads.Load() }

// MintLinksAt mints one email's links for an invitation as if it were sent
// at the given time.
func (s *Store) MintLinksAt(ctx context.Context, invitationID int64, kinds []string, at time.Time) (map[string]string, error) {
	links, err := mintLinks(s.db.WithContext(ctx), []int64{invitationID}, kinds, at)
	if err != nil {
		return nil, err
	}
	return links[0], nil
}

// SetWindowRows makes the ROI queries on SQLite take at most n runs'
// windows each, so tests reach the chunked paths with a few campaigns.
func (s *Store) SetWindowRows(n int) { s.windowRows = n }

// PromotionsSQL is the SQL promotedBy runs for these campaign sources.
func PromotionsSQL(db *gorm.DB, sources []string) string {
	var rows []struct {
		Source string
		N      int64
	}
	st := promotedQuery(db.Session(&gorm.Session{DryRun: true}), sources).Scan(&rows).Statement
	return db.Dialector.Explain(st.SQL.String(), st.Vars...)
}

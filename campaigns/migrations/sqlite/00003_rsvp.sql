-- SQLite twin of postgres/00003_rsvp.sql. RSVPs: when each answer came, and the waitlist's arrival order.

-- +goose Up
ALTER TABLE invitations ADD COLUMN rsvp_at DATETIME;
ALTER TABLE invitations ADD COLUMN waitlist_seq INTEGER;
ALTER TABLE invitations ADD COLUMN checked_in_by TEXT NOT NULL DEFAULT '';
ALTER TABLE invitations ADD COLUMN walk_in BOOLEAN NOT NULL DEFAULT 0;
-- Promotion rules per campaign (JSON); empty means the defaults.
ALTER TABLE campaigns ADD COLUMN rules TEXT NOT NULL DEFAULT '';
CREATE INDEX invitations_waitlist_idx ON invitations (campaign_id, waitlist_seq) WHERE rsvp = 'waitlisted';
CREATE INDEX invitations_yes_idx ON invitations (campaign_id) WHERE rsvp = 'yes';

-- "A referred B": the referrer is a customer or a member of staff.
CREATE TABLE referrals (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    referrer_customer_id INTEGER REFERENCES customers(id) ON DELETE CASCADE,
    referrer_user_id     INTEGER REFERENCES users(id) ON DELETE SET NULL,
    referred_customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    campaign_id          INTEGER REFERENCES campaigns(id) ON DELETE SET NULL,
    created_by           TEXT NOT NULL DEFAULT '',
    created_at           DATETIME NOT NULL,
    CHECK (referrer_customer_id IS NOT NULL OR referrer_user_id IS NOT NULL)
);
CREATE UNIQUE INDEX referrals_pair_idx ON referrals (referrer_customer_id, referred_customer_id);
CREATE INDEX referrals_user_idx ON referrals (referrer_user_id);
CREATE INDEX referrals_campaign_idx ON referrals (campaign_id);

-- +goose Down
DROP TABLE referrals;
DROP INDEX invitations_yes_idx;
DROP INDEX invitations_waitlist_idx;
ALTER TABLE campaigns DROP COLUMN rules;
ALTER TABLE invitations DROP COLUMN walk_in;
ALTER TABLE invitations DROP COLUMN checked_in_by;
ALTER TABLE invitations DROP COLUMN waitlist_seq;
ALTER TABLE invitations DROP COLUMN rsvp_at;

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

-- Reminders (when, before the event, to whom), as JSON offsets.
ALTER TABLE campaigns ADD COLUMN reminders TEXT NOT NULL DEFAULT '["48h"]';

-- Follow-up emails of an invitation (reminders, a freed seat, a changed
-- event), sent through the same claim/lease/recall machinery.
CREATE TABLE followups (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id   INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    invitation_id INTEGER NOT NULL REFERENCES invitations(id) ON DELETE CASCADE,
    customer_id   INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    email         TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('reminder', 'seat', 'update', 'survey')),
    dedupe_key    TEXT NOT NULL,
    due_at        DATETIME NOT NULL,
    status        TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
                  ('pending', 'sending', 'sent', 'delivered', 'failed', 'suppressed')),
    uncertain     BOOLEAN NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    lease_owner   TEXT,
    lease_until   DATETIME,
    batch_id      TEXT,
    cancel_by     DATETIME,
    message_id    TEXT,
    status_reason TEXT NOT NULL DEFAULT '',
    sent_at       DATETIME,
    created_at    DATETIME NOT NULL,
    updated_at    DATETIME NOT NULL,
    UNIQUE (invitation_id, dedupe_key)
);
CREATE INDEX followups_due_idx ON followups (due_at, campaign_id) WHERE status = 'pending';
CREATE INDEX followups_lease_idx ON followups (lease_until) WHERE status = 'sending';

-- +goose Down
DROP TABLE followups;
ALTER TABLE campaigns DROP COLUMN reminders;
DROP TABLE referrals;
DROP INDEX invitations_yes_idx;
DROP INDEX invitations_waitlist_idx;
ALTER TABLE campaigns DROP COLUMN rules;
ALTER TABLE invitations DROP COLUMN walk_in;
ALTER TABLE invitations DROP COLUMN checked_in_by;
ALTER TABLE invitations DROP COLUMN waitlist_seq;
ALTER TABLE invitations DROP COLUMN rsvp_at;

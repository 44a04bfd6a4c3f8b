-- SQLite twin of postgres/00002_campaigns.sql.
-- Campaigns, their frozen audiences (invitations), public tokens, gift
-- codes, the local outbox and SendGrid's delivery events.

-- +goose Up
CREATE TABLE campaigns (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    kind              TEXT NOT NULL CHECK (kind IN ('event', 'gift')),
    name              TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'draft' CHECK (status IN
                      ('draft', 'scheduled', 'sending', 'sent', 'closed', 'cancelled', 'paused', 'missed')),
    status_note       TEXT NOT NULL DEFAULT '',
    time_zone         TEXT NOT NULL,
    filter            TEXT NOT NULL DEFAULT '{}',
    holdout_percent   INTEGER NOT NULL DEFAULT 0 CHECK (holdout_percent BETWEEN 0 AND 50),
    holdout_seed      INTEGER NOT NULL,
    attribution_days  INTEGER NOT NULL DEFAULT 90,
    subject           TEXT NOT NULL DEFAULT '',
    message           TEXT NOT NULL DEFAULT '',
    venue             TEXT NOT NULL DEFAULT '',
    address           TEXT NOT NULL DEFAULT '',
    starts_at         DATETIME,
    ends_at           DATETIME,
    capacity          INTEGER NOT NULL DEFAULT 0,
    guests_per_invite INTEGER NOT NULL DEFAULT 0,
    rsvp_deadline     DATETIME,
    ics_sequence      INTEGER NOT NULL DEFAULT 0,
    gift_type         TEXT NOT NULL DEFAULT '',
    face_value_cents  INTEGER NOT NULL DEFAULT 0,
    unit_cost_cents   INTEGER NOT NULL DEFAULT 0,
    fulfilment        TEXT NOT NULL DEFAULT '',
    send_at           DATETIME,  -- the next (or only) time invitations go out
    cron_spec         TEXT NOT NULL DEFAULT '',
    runs              INTEGER NOT NULL DEFAULT 0,
    last_run_at       DATETIME,
    created_by        TEXT NOT NULL DEFAULT '',
    created_at        DATETIME NOT NULL,
    updated_at        DATETIME NOT NULL
);
CREATE INDEX campaigns_due_idx ON campaigns (send_at) WHERE status = 'scheduled';
CREATE INDEX campaigns_status_idx ON campaigns (status, id);

CREATE TABLE invitations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id   INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    customer_id   INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    email         TEXT NOT NULL,
    run           INTEGER NOT NULL DEFAULT 1,
    holdout       BOOLEAN NOT NULL DEFAULT 0,
    status        TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
                  ('pending', 'sending', 'sent', 'delivered', 'failed', 'suppressed')),
    uncertain     BOOLEAN NOT NULL DEFAULT 0,  -- a send whose outcome could not be settled
    attempts      INTEGER NOT NULL DEFAULT 0,
    lease_owner   TEXT,
    lease_until   DATETIME,
    batch_id      TEXT,
    cancel_by     DATETIME,  -- until when the batch in flight can still be cancelled
    message_id    TEXT,
    status_reason TEXT NOT NULL DEFAULT '',
    sent_at       DATETIME,
    delivered_at  DATETIME,
    opened_at     DATETIME,
    clicked_at    DATETIME,
    rsvp          TEXT NOT NULL DEFAULT 'none' CHECK (rsvp IN ('none', 'yes', 'no', 'waitlisted')),
    guests        INTEGER NOT NULL DEFAULT 0,
    attended      BOOLEAN NOT NULL DEFAULT 0,
    checked_in_at DATETIME,
    created_at    DATETIME NOT NULL,
    updated_at    DATETIME NOT NULL,
    UNIQUE (campaign_id, customer_id)
);
CREATE INDEX invitations_claim_idx ON invitations (campaign_id, id) WHERE status = 'pending' AND holdout = 0;
CREATE INDEX invitations_lease_idx ON invitations (lease_until) WHERE status = 'sending';
CREATE INDEX invitations_customer_idx ON invitations (customer_id);

-- Public links (RSVP, unsubscribe, survey, check-in): random secrets, only
-- their SHA-256 is stored. A resend mints new ones; old ones keep working.
CREATE TABLE public_tokens (
    token_hash    TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('rsvp', 'unsubscribe', 'survey', 'checkin')),
    invitation_id INTEGER REFERENCES invitations(id) ON DELETE CASCADE,
    customer_id   INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    created_at    DATETIME NOT NULL,
    expires_at    DATETIME NOT NULL
);
CREATE INDEX public_tokens_invitation_idx ON public_tokens (invitation_id);

CREATE TABLE gift_codes (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id   INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    code          TEXT NOT NULL,
    invitation_id INTEGER UNIQUE REFERENCES invitations(id) ON DELETE SET NULL,
    assigned_at   DATETIME,
    created_at    DATETIME NOT NULL,
    UNIQUE (campaign_id, code)
);
CREATE INDEX gift_codes_free_idx ON gift_codes (campaign_id, id) WHERE invitation_id IS NULL;

-- The local outbox: every email as it would have been sent.
CREATE TABLE outbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id   INTEGER REFERENCES campaigns(id) ON DELETE CASCADE,
    invitation_id INTEGER REFERENCES invitations(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    batch_id      TEXT NOT NULL,  -- a cancelled batch's emails are removed
    to_email      TEXT NOT NULL,
    to_name       TEXT NOT NULL DEFAULT '',
    from_email    TEXT NOT NULL,
    subject       TEXT NOT NULL,
    text_body     TEXT NOT NULL,
    html_body     TEXT NOT NULL,
    headers       TEXT NOT NULL DEFAULT '{}',
    attachments   TEXT NOT NULL DEFAULT '[]',
    created_at    DATETIME NOT NULL
);
CREATE INDEX outbox_campaign_idx ON outbox (campaign_id, id);
CREATE INDEX outbox_batch_idx ON outbox (batch_id);

-- SendGrid event webhook: each event once, whatever SendGrid repeats.
CREATE TABLE email_events (
    sg_event_id   TEXT PRIMARY KEY,
    invitation_id INTEGER REFERENCES invitations(id) ON DELETE CASCADE,
    event         TEXT NOT NULL,
    email         TEXT NOT NULL DEFAULT '',
    reason        TEXT NOT NULL DEFAULT '',
    occurred_at   DATETIME NOT NULL,
    received_at   DATETIME NOT NULL
);
CREATE INDEX email_events_invitation_idx ON email_events (invitation_id);

-- +goose Down
DROP TABLE email_events;
DROP TABLE outbox;
DROP TABLE gift_codes;
DROP TABLE public_tokens;
DROP TABLE invitations;
DROP TABLE campaigns;

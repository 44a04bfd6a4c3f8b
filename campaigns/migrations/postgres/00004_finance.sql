-- Finance: purchases, campaign cost lines with their audit, NPS answers.

-- +goose Up
CREATE TABLE purchases (
    id           BIGSERIAL PRIMARY KEY,
    external_id  TEXT NOT NULL UNIQUE,
    customer_id  BIGINT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    amount_cents BIGINT NOT NULL CHECK (amount_cents >= 0),
    purchased_at TIMESTAMPTZ NOT NULL,
    created_by   TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX purchases_customer_idx ON purchases (customer_id, purchased_at) INCLUDE (amount_cents);

CREATE TABLE cost_lines (
    id           BIGSERIAL PRIMARY KEY,
    campaign_id  BIGINT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    category     TEXT NOT NULL,
    amount_cents BIGINT NOT NULL CHECK (amount_cents >= 0),
    per          TEXT NOT NULL CHECK (per IN ('fixed', 'attendee', 'gift')),
    note         TEXT NOT NULL DEFAULT '',
    created_by   TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL,
    deleted_at   TIMESTAMPTZ,
    deleted_by   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX cost_lines_campaign_idx ON cost_lines (campaign_id) WHERE deleted_at IS NULL;

-- Who changed which cost, and how: every add and removal.
CREATE TABLE cost_audit (
    id           BIGSERIAL PRIMARY KEY,
    cost_line_id BIGINT NOT NULL,
    campaign_id  BIGINT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    action       TEXT NOT NULL CHECK (action IN ('added', 'removed')),
    detail       TEXT NOT NULL,
    actor        TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX cost_audit_campaign_idx ON cost_audit (campaign_id, id);

ALTER TABLE invitations ADD COLUMN nps_score SMALLINT CHECK (nps_score BETWEEN 0 AND 10);
ALTER TABLE invitations ADD COLUMN nps_at TIMESTAMPTZ;
ALTER TABLE invitations ADD COLUMN nps_comment TEXT NOT NULL DEFAULT '';
ALTER TABLE invitations ADD COLUMN followed_up_at TIMESTAMPTZ;
ALTER TABLE invitations ADD COLUMN followed_up_by TEXT NOT NULL DEFAULT '';
-- Surveys go this long after the event ends (default: the next morning).
ALTER TABLE campaigns ADD COLUMN survey_after TEXT NOT NULL DEFAULT 'next-morning';

-- +goose Down
ALTER TABLE campaigns DROP COLUMN survey_after;
ALTER TABLE invitations DROP COLUMN followed_up_by;
ALTER TABLE invitations DROP COLUMN followed_up_at;
ALTER TABLE invitations DROP COLUMN nps_comment;
ALTER TABLE invitations DROP COLUMN nps_at;
ALTER TABLE invitations DROP COLUMN nps_score;
DROP TABLE cost_audit;
DROP TABLE cost_lines;
DROP TABLE purchases;

-- Foundation: users and access, customers on the ladder, the level ledger,
-- import runs, and a small key/value table for sessions and rate limits.

-- +goose Up
CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL DEFAULT '',
    role          TEXT NOT NULL CHECK (role IN ('admin', 'coordinator', 'rep', 'finance')),
    password_hash TEXT NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    disabled_at   TIMESTAMPTZ,
    sessions_valid_after TIMESTAMPTZ  -- sessions begun before it end (password reset)
);

CREATE TABLE api_tokens (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'coordinator', 'rep', 'finance')),
    token_hash   TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    created_by   BIGINT REFERENCES users(id) ON DELETE SET NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);

-- Sessions, CSRF tokens and rate-limit counters, shared by every web process.
CREATE TABLE kv_store (
    key        TEXT PRIMARY KEY,
    value      BYTEA NOT NULL,
    expires_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX kv_store_expires_idx ON kv_store (expires_at) WHERE expires_at > 0;

CREATE TABLE customers (
    id                 BIGSERIAL PRIMARY KEY,
    external_id        TEXT UNIQUE,
    name               TEXT NOT NULL,
    email              TEXT NOT NULL UNIQUE,  -- stored lower-cased: unique case-insensitively
    company            TEXT NOT NULL DEFAULT '',
    metro_area         TEXT NOT NULL DEFAULT '',
    metro_key          TEXT NOT NULL DEFAULT '',  -- lower-cased, spaces collapsed: what filters match
    annual_spend_cents BIGINT NOT NULL DEFAULT 0 CHECK (annual_spend_cents >= 0),
    level              SMALLINT NOT NULL DEFAULT 1 CHECK (level BETWEEN 1 AND 7),
    owner_id           BIGINT REFERENCES users(id) ON DELETE SET NULL,
    phone              TEXT NOT NULL DEFAULT '',
    consent_state      TEXT NOT NULL DEFAULT 'subscribed'
                       CHECK (consent_state IN ('subscribed', 'unsubscribed', 'bounced', 'spam_reported')),
    consent_changed_at TIMESTAMPTZ,
    consent_reason     TEXT NOT NULL DEFAULT '',
    last_contacted_at  TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL
);
-- The audience query (metros + spend + level, contactable only) is answered
-- from these partial indexes; the second serves filters without a metro.
CREATE INDEX customers_audience_metro_idx ON customers (metro_key, annual_spend_cents, level)
    INCLUDE (owner_id, last_contacted_at) WHERE consent_state = 'subscribed';
CREATE INDEX customers_audience_spend_idx ON customers (annual_spend_cents, level)
    INCLUDE (metro_key, owner_id, last_contacted_at) WHERE consent_state = 'subscribed';
CREATE INDEX customers_owner_idx ON customers (owner_id);
CREATE INDEX customers_name_idx ON customers (lower(name), id);
CREATE INDEX customers_level_idx ON customers (level, id);

CREATE TABLE level_ledger (
    id          BIGSERIAL PRIMARY KEY,
    customer_id BIGINT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    from_level  SMALLINT NOT NULL CHECK (from_level BETWEEN 0 AND 7),  -- 0: the record was created
    to_level    SMALLINT NOT NULL CHECK (to_level BETWEEN 1 AND 7),
    rule        TEXT NOT NULL,
    source      TEXT NOT NULL DEFAULT '',
    credit_key  TEXT,  -- rule|source for rule credits: one credit per rule and source
    actor       TEXT NOT NULL DEFAULT '',
    note        TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX level_ledger_customer_idx ON level_ledger (customer_id, id);
CREATE UNIQUE INDEX level_ledger_credit_idx ON level_ledger (customer_id, credit_key);

-- +goose StatementBegin
CREATE FUNCTION level_ledger_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'level_ledger is append-only';
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
CREATE TRIGGER level_ledger_no_update BEFORE UPDATE ON level_ledger
    FOR EACH ROW EXECUTE FUNCTION level_ledger_append_only();
-- Deleting a customer (erasure) cascades; a direct DELETE of history does not.
CREATE TRIGGER level_ledger_no_delete BEFORE DELETE ON level_ledger
    FOR EACH ROW WHEN (pg_trigger_depth() < 1) EXECUTE FUNCTION level_ledger_append_only();

CREATE TABLE imports (
    id            BIGSERIAL PRIMARY KEY,
    kind          TEXT NOT NULL,
    filename      TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    bytes_total   BIGINT NOT NULL DEFAULT 0,
    bytes_read    BIGINT NOT NULL DEFAULT 0,
    rows_read     BIGINT NOT NULL DEFAULT 0,
    inserted      BIGINT NOT NULL DEFAULT 0,
    updated       BIGINT NOT NULL DEFAULT 0,
    unchanged     BIGINT NOT NULL DEFAULT 0,
    rejected      BIGINT NOT NULL DEFAULT 0,
    problems      TEXT NOT NULL DEFAULT '[]',  -- JSON: first rejected rows and warnings
    error         TEXT NOT NULL DEFAULT '',
    started_by    TEXT NOT NULL DEFAULT '',
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ
);

-- +goose Down
DROP TABLE imports;
DROP TABLE level_ledger;
DROP FUNCTION level_ledger_append_only();
DROP TABLE customers;
DROP TABLE kv_store;
DROP TABLE api_tokens;
DROP TABLE users;

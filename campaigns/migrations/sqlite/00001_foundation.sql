-- Foundation: the same schema as postgres/00001_foundation.sql in SQLite's
-- dialect. Times are stored as UTC text, which sorts and compares correctly.

-- +goose Up
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL DEFAULT '',
    role          TEXT NOT NULL CHECK (role IN ('admin', 'coordinator', 'rep', 'finance')),
    password_hash TEXT NOT NULL DEFAULT '',
    created_at    DATETIME NOT NULL,
    updated_at    DATETIME NOT NULL,
    disabled_at   DATETIME,
    sessions_valid_after DATETIME  -- sessions begun before it end (password reset)
);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'coordinator', 'rep', 'finance')),
    token_hash   TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    created_by   INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at   DATETIME NOT NULL,
    last_used_at DATETIME,
    revoked_at   DATETIME
);

CREATE TABLE kv_store (
    key        TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    expires_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX kv_store_expires_idx ON kv_store (expires_at) WHERE expires_at > 0;

CREATE TABLE customers (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    external_id        TEXT UNIQUE,
    name               TEXT NOT NULL,
    email              TEXT NOT NULL UNIQUE,
    company            TEXT NOT NULL DEFAULT '',
    metro_area         TEXT NOT NULL DEFAULT '',
    metro_key          TEXT NOT NULL DEFAULT '',
    annual_spend_cents INTEGER NOT NULL DEFAULT 0 CHECK (annual_spend_cents >= 0),
    level              INTEGER NOT NULL DEFAULT 1 CHECK (level BETWEEN 1 AND 7),
    owner_id           INTEGER REFERENCES users(id) ON DELETE SET NULL,
    phone              TEXT NOT NULL DEFAULT '',
    consent_state      TEXT NOT NULL DEFAULT 'subscribed'
                       CHECK (consent_state IN ('subscribed', 'unsubscribed', 'bounced', 'spam_reported')),
    consent_changed_at DATETIME,
    consent_reason     TEXT NOT NULL DEFAULT '',
    last_contacted_at  DATETIME,
    created_at         DATETIME NOT NULL,
    updated_at         DATETIME NOT NULL
);
CREATE INDEX customers_audience_metro_idx ON customers (metro_key, annual_spend_cents, level)
    WHERE consent_state = 'subscribed';
CREATE INDEX customers_audience_spend_idx ON customers (annual_spend_cents, level)
    WHERE consent_state = 'subscribed';
CREATE INDEX customers_owner_idx ON customers (owner_id);
CREATE INDEX customers_name_idx ON customers (lower(name), id);
CREATE INDEX customers_level_idx ON customers (level, id);

CREATE TABLE level_ledger (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    from_level  INTEGER NOT NULL CHECK (from_level BETWEEN 0 AND 7),
    to_level    INTEGER NOT NULL CHECK (to_level BETWEEN 1 AND 7),
    rule        TEXT NOT NULL,
    source      TEXT NOT NULL DEFAULT '',
    credit_key  TEXT,
    actor       TEXT NOT NULL DEFAULT '',
    note        TEXT NOT NULL DEFAULT '',
    created_at  DATETIME NOT NULL
);
CREATE INDEX level_ledger_customer_idx ON level_ledger (customer_id, id);
CREATE UNIQUE INDEX level_ledger_credit_idx ON level_ledger (customer_id, credit_key);

-- +goose StatementBegin
CREATE TRIGGER level_ledger_no_update BEFORE UPDATE ON level_ledger
BEGIN
    SELECT RAISE(ABORT, 'level_ledger is append-only');
END;
-- +goose StatementEnd

CREATE TABLE imports (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT NOT NULL,
    filename      TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    bytes_total   INTEGER NOT NULL DEFAULT 0,
    bytes_read    INTEGER NOT NULL DEFAULT 0,
    rows_read     INTEGER NOT NULL DEFAULT 0,
    inserted      INTEGER NOT NULL DEFAULT 0,
    updated       INTEGER NOT NULL DEFAULT 0,
    unchanged     INTEGER NOT NULL DEFAULT 0,
    rejected      INTEGER NOT NULL DEFAULT 0,
    problems      TEXT NOT NULL DEFAULT '[]',
    error         TEXT NOT NULL DEFAULT '',
    started_by    TEXT NOT NULL DEFAULT '',
    started_at    DATETIME NOT NULL,
    finished_at   DATETIME
);

-- +goose Down
DROP TABLE imports;
DROP TABLE level_ledger;
DROP TABLE customers;
DROP TABLE kv_store;
DROP TABLE api_tokens;
DROP TABLE users;

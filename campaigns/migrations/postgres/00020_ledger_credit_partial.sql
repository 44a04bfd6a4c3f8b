-- One credit per rule and source is enforced on the rows that carry a
-- credit key: a rule's credits. "Created" rows and manual changes carry
-- none (NULL, which a unique index never compares equal), so the full
-- index held an entry per customer that no check could ever use: a
-- million of them after a million-customer load, built again by every
-- fresh load (0.7 s of a seed) and written by every customer an import
-- adds. Every lookup by credit key (credit_key = …, IN, right(…) = …)
-- implies NOT NULL, so PostgreSQL answers it from this index as before.

-- +goose Up
DROP INDEX level_ledger_credit_idx;
CREATE UNIQUE INDEX level_ledger_credit_idx ON level_ledger (customer_id, credit_key)
    WHERE credit_key IS NOT NULL;

-- +goose Down
DROP INDEX level_ledger_credit_idx;
CREATE UNIQUE INDEX level_ledger_credit_idx ON level_ledger (customer_id, credit_key);

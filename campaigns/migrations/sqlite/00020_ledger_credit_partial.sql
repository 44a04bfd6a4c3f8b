-- See postgres/00020_ledger_credit_partial.sql.

-- +goose Up
DROP INDEX level_ledger_credit_idx;
CREATE UNIQUE INDEX level_ledger_credit_idx ON level_ledger (customer_id, credit_key)
    WHERE credit_key IS NOT NULL;

-- +goose Down
DROP INDEX level_ledger_credit_idx;
CREATE UNIQUE INDEX level_ledger_credit_idx ON level_ledger (customer_id, credit_key);

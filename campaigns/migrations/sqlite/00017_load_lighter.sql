-- See postgres/00017_load_lighter.sql. The unique (customer_id, credit_key)
-- index answers what level_ledger_customer_idx did. SQLite already
-- compares text byte by byte, so email and external_id stay as they are.

-- +goose Up
DROP INDEX level_ledger_customer_idx;

-- +goose Down
CREATE INDEX level_ledger_customer_idx ON level_ledger (customer_id, id);

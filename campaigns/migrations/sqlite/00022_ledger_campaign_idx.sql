-- See postgres/00022_ledger_campaign_idx.sql. SQLite has no INCLUDE: the
-- levels are in the key.

-- +goose Up
CREATE INDEX level_ledger_campaign_idx ON level_ledger (source, customer_id, from_level, to_level)
    WHERE source LIKE 'campaign:%';

-- +goose Down
DROP INDEX level_ledger_campaign_idx;

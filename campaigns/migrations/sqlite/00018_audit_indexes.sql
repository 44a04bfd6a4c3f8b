-- See postgres/00018_audit_indexes.sql. SQLite has no INCLUDE, so the
-- level index stays; the promotions get their partial index (SQLite has
-- those), for the audit's and the dashboard's look at recent promotions.

-- +goose Up
CREATE INDEX level_ledger_promotions_idx ON level_ledger (id)
    WHERE from_level > 0 AND to_level > from_level;

-- +goose Down
DROP INDEX level_ledger_promotions_idx;

-- Nothing on SQLite: it has no INCLUDE, and at its scale the audit's count
-- reads the rows quickly enough (see postgres/00018_level_consent.sql).

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;

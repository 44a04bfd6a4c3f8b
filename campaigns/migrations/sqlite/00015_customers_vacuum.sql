-- Nothing on SQLite, which has no visibility map to keep up (see
-- postgres/00015_customers_vacuum.sql).

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;

-- Nothing on SQLite: its search has had a trigram index of its own since
-- 00008 (see postgres/00016_customer_search.sql).

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;

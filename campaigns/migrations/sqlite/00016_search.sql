-- Nothing on SQLite: its search has had a trigram index since 00008 (see
-- postgres/00016_search.sql).

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;

-- SQLite adds a trigram index for free-text customer search here (see
-- sqlite/00008_search.sql); this keeps the two schemas' versions in step.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;

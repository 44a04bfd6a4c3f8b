-- Nothing on SQLite: its audience index keeps spend before level (see
-- postgres/00013_audience_levels.sql). SQLite checks the level list inside
-- that index, and its pages are within their goal at 100,000 customers.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;

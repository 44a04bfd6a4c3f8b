-- SQLite adds an index for the relationship audit here (see
-- sqlite/00009_audit.sql); this keeps the two schemas' versions in step.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;

-- PostgreSQL drops the public tokens' foreign key to customers here (see
-- postgres/00007_send.sql). SQLite checks foreign keys without row locks,
-- so it keeps it; this keeps the two schemas' versions in step.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;

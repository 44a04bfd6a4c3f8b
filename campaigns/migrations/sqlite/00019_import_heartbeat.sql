-- See postgres/00019_import_heartbeat.sql.

-- +goose Up
ALTER TABLE imports ADD COLUMN alive_at DATETIME;

-- +goose Down
ALTER TABLE imports DROP COLUMN alive_at;

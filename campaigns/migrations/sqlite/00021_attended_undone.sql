-- See postgres/00021_attended_undone.sql.

-- +goose Up
ALTER TABLE invitations ADD COLUMN attended_undone INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE invitations DROP COLUMN attended_undone;

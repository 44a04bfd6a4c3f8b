-- How many times an undone check-in took back this invitation's attended
-- credit (campaigns/checkin.go, UndoCheckIn). The ledger is append-only,
-- so the reversed credit's row (and its credit key) stays; the next real
-- check-in credits under a key that carries this count instead, so it
-- promotes again, once.

-- +goose Up
ALTER TABLE invitations ADD COLUMN attended_undone INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE invitations DROP COLUMN attended_undone;

-- An import writes alive_at while it runs (campaigns/import.go), so one
-- whose process ended without a word (a crash, a kill) is shown as
-- stopped instead of "importing" for ever.

-- +goose Up
ALTER TABLE imports ADD COLUMN alive_at TIMESTAMPTZ;

-- +goose Down
ALTER TABLE imports DROP COLUMN alive_at;

-- The local outbox's batches (campaigns/outbox.go). A cancelled batch is
-- remembered, so that a send made with its id after the cancel (a worker
-- that stalled past its lease and woke after recovery) is not kept, as
-- SendGrid drops it: after Cancel, nothing of the batch reaches anyone.
-- Send and Cancel both take the batch's row, so neither slips past the
-- other.

-- +goose Up
CREATE TABLE outbox_batches (
    batch_id     TEXT PRIMARY KEY,
    created_at   TIMESTAMPTZ NOT NULL,
    cancelled_at TIMESTAMPTZ
);

-- +goose Down
DROP TABLE outbox_batches;

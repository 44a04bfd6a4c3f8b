-- See postgres/00020_outbox_batches.sql.

-- +goose Up
CREATE TABLE outbox_batches (
    batch_id     TEXT PRIMARY KEY,
    created_at   DATETIME NOT NULL,
    cancelled_at DATETIME
);

-- +goose Down
DROP TABLE outbox_batches;

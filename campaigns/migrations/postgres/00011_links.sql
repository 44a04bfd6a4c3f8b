-- Public links (RSVP, unsubscribe, survey, check-in) are signed with this
-- key (campaigns/links.go) instead of being stored one public_tokens row
-- each. It is made on first use; links stored before keep working.

-- +goose Up
CREATE TABLE link_keys (
    id         SMALLINT PRIMARY KEY,
    secret     BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE link_keys;

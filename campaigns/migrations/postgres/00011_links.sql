-- An email's links (RSVP, unsubscribe, check-in or survey) are one row
-- here, found by its id, instead of one public_tokens row each found by
-- its hash (campaigns/links.go). Links stored before keep working.

-- +goose Up
CREATE TABLE link_sets (
    id               BIGSERIAL PRIMARY KEY,
    invitation_id    BIGINT NOT NULL REFERENCES invitations(id) ON DELETE CASCADE,
    rsvp_hash        BYTEA,  -- SHA-256 of each link's secret; NULL: no such link in that email
    unsubscribe_hash BYTEA,
    checkin_hash     BYTEA,
    survey_hash      BYTEA,
    created_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX link_sets_invitation_idx ON link_sets (invitation_id);

-- +goose Down
DROP TABLE link_sets;

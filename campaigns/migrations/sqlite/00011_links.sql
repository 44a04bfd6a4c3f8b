-- An email's links are one row here instead of one public_tokens row each
-- (see postgres/00011_links.sql).

-- +goose Up
CREATE TABLE link_sets (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    invitation_id    INTEGER NOT NULL REFERENCES invitations(id) ON DELETE CASCADE,
    rsvp_hash        BLOB,
    unsubscribe_hash BLOB,
    checkin_hash     BLOB,
    survey_hash      BLOB,
    created_at       DATETIME NOT NULL
);
CREATE INDEX link_sets_invitation_idx ON link_sets (invitation_id);

-- +goose Down
DROP TABLE link_sets;

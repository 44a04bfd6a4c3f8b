-- Public links are signed with this key instead of being stored one row
-- each (see postgres/00011_links.sql).

-- +goose Up
CREATE TABLE link_keys (
    id         INTEGER PRIMARY KEY,
    secret     BLOB NOT NULL,
    created_at DATETIME NOT NULL
);

-- +goose Down
DROP TABLE link_keys;

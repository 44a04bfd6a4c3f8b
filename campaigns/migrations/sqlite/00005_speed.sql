-- Kept in step with postgres/00005_speed.sql.

-- +goose Up
-- Seats taken (sum of 1 + guests over yes answers) is read on every RSVP
-- and check-in; SQLite has no INCLUDE, so guests joins the key.
DROP INDEX invitations_yes_idx;
CREATE INDEX invitations_yes_idx ON invitations (campaign_id, guests) WHERE rsvp = 'yes';

-- +goose Down
DROP INDEX invitations_yes_idx;
CREATE INDEX invitations_yes_idx ON invitations (campaign_id) WHERE rsvp = 'yes';

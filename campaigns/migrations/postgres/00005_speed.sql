-- Indexes that the benchmarks (scripts/bench) showed were missing.

-- +goose Up
-- Seats taken (sum of 1 + guests over yes answers) is read on every RSVP
-- and check-in; with guests in the index it is an index-only scan.
DROP INDEX invitations_yes_idx;
CREATE INDEX invitations_yes_idx ON invitations (campaign_id) INCLUDE (guests) WHERE rsvp = 'yes';

-- +goose Down
DROP INDEX invitations_yes_idx;
CREATE INDEX invitations_yes_idx ON invitations (campaign_id) WHERE rsvp = 'yes';

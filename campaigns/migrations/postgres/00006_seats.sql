-- Seats taken by yes answers, kept on the event's row. Answers to one event
-- queue on that row's lock; summing the yes answers inside it took 1.2 ms
-- of each answer's turn at 5,000 guests.

-- +goose Up
ALTER TABLE campaigns ADD COLUMN seats_taken BIGINT NOT NULL DEFAULT 0;
UPDATE campaigns SET seats_taken = (SELECT coalesce(sum(1 + guests), 0) FROM invitations
    WHERE invitations.campaign_id = campaigns.id AND invitations.rsvp = 'yes');

-- +goose Down
ALTER TABLE campaigns DROP COLUMN seats_taken;

-- The customer list sorts by name, spend, level, metro or last change, and
-- pages by cursor "through the sort's index". Spend, metro and last change
-- had none over every customer (the audience indexes hold the subscribed
-- only), so each of their pages sorted the whole table: 0.8-1.0 s at a
-- million customers, the first page as much as the thousandth. Now each
-- sort has its index, ending in id as the cursor does
-- (TestEverySortPagesThroughAnIndexOnPostgres).
--
-- The spend index replaces the audience's partial one: with level, metro,
-- owner and consent carried along, an audience without metros is still
-- counted from the index alone, and the preview's sample (biggest
-- spenders first) reads it backwards as before. One index instead of two
-- keeps bulk loads, which build every index again, from paying twice.

-- +goose Up
DROP INDEX customers_audience_spend_idx;
CREATE INDEX customers_spend_idx ON customers (annual_spend_cents, id)
    INCLUDE (level, metro_key, owner_id, consent_state);
CREATE INDEX customers_metro_idx ON customers (metro_key, id);
CREATE INDEX customers_updated_idx ON customers (updated_at, id);

-- +goose Down
DROP INDEX customers_updated_idx;
DROP INDEX customers_metro_idx;
DROP INDEX customers_spend_idx;
CREATE INDEX customers_audience_spend_idx ON customers (annual_spend_cents, level)
    INCLUDE (metro_key, owner_id) WHERE consent_state = 'subscribed';

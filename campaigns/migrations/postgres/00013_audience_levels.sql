-- The audience index puts level before spend. The audience filter asks for
-- a list of levels (level IN (3, 4, 5)), so each metro and level is one
-- range of spend in the index, and a count reads only the customers it
-- counts. With spend second, a count read every customer of its metros
-- above the spend floor, the excluded levels too (1M customers, the
-- bench's previews: count p95 33.5 → 26.0 ms). The sample, biggest
-- spenders first, reads the spend index either way.

-- +goose Up
DROP INDEX customers_audience_metro_idx;
CREATE INDEX customers_audience_metro_idx ON customers (metro_key, level, annual_spend_cents)
    INCLUDE (owner_id) WHERE consent_state = 'subscribed';

-- +goose Down
DROP INDEX customers_audience_metro_idx;
CREATE INDEX customers_audience_metro_idx ON customers (metro_key, annual_spend_cents, level)
    INCLUDE (owner_id) WHERE consent_state = 'subscribed';

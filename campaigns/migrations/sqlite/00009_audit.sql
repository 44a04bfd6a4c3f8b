-- The relationship audit counts customers per level not contacted in 90
-- days: a covering index instead of reading every row (100,000 customers:
-- 99 → 16 ms for that query). PostgreSQL keeps its table scan: there the
-- send path updates last_contacted_at a thousand rows at a time, and every
-- index on it costs each send.

-- +goose Up
CREATE INDEX customers_level_contact_idx ON customers (level, last_contacted_at);

-- +goose Down
DROP INDEX customers_level_contact_idx;

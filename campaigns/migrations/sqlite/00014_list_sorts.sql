-- Each sort of the customer list has its index, ending in id as the
-- cursor does (see postgres/00014_list_sorts.sql). SQLite keeps its
-- partial audience index on spend.

-- +goose Up
CREATE INDEX customers_spend_idx ON customers (annual_spend_cents, id);
CREATE INDEX customers_metro_idx ON customers (metro_key, id);
CREATE INDEX customers_updated_idx ON customers (updated_at, id);

-- +goose Down
DROP INDEX customers_updated_idx;
DROP INDEX customers_metro_idx;
DROP INDEX customers_spend_idx;

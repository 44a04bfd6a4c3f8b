-- When Rapport last contacted a customer lives in its own narrow table.
-- As a customers column, each send rewrote a whole customers row and all
-- eight of its indexes (never a HOT update: two indexes carried the
-- column); that update was the send path's largest cost, 11.5 of 31.6 s of
-- PostgreSQL time for a 100,000-guest send. A customer never contacted has
-- no row.

-- +goose Up
CREATE TABLE customer_contacts (
    customer_id       BIGINT PRIMARY KEY REFERENCES customers(id) ON DELETE CASCADE,
    last_contacted_at TIMESTAMPTZ NOT NULL
);
INSERT INTO customer_contacts (customer_id, last_contacted_at)
    SELECT id, last_contacted_at FROM customers WHERE last_contacted_at IS NOT NULL;
-- Frequency caps and the audit ask "who was contacted since T".
CREATE INDEX customer_contacts_recent_idx ON customer_contacts (last_contacted_at, customer_id);
DROP INDEX customers_audience_metro_idx;
DROP INDEX customers_audience_spend_idx;
ALTER TABLE customers DROP COLUMN last_contacted_at;
CREATE INDEX customers_audience_metro_idx ON customers (metro_key, annual_spend_cents, level)
    INCLUDE (owner_id) WHERE consent_state = 'subscribed';
CREATE INDEX customers_audience_spend_idx ON customers (annual_spend_cents, level)
    INCLUDE (metro_key, owner_id) WHERE consent_state = 'subscribed';

-- +goose Down
ALTER TABLE customers ADD COLUMN last_contacted_at TIMESTAMPTZ;
UPDATE customers c SET last_contacted_at = cc.last_contacted_at FROM customer_contacts cc WHERE cc.customer_id = c.id;
DROP INDEX customers_audience_metro_idx;
DROP INDEX customers_audience_spend_idx;
CREATE INDEX customers_audience_metro_idx ON customers (metro_key, annual_spend_cents, level)
    INCLUDE (owner_id, last_contacted_at) WHERE consent_state = 'subscribed';
CREATE INDEX customers_audience_spend_idx ON customers (annual_spend_cents, level)
    INCLUDE (metro_key, owner_id, last_contacted_at) WHERE consent_state = 'subscribed';
DROP TABLE customer_contacts;

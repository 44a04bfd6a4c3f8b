-- When Rapport last contacted a customer lives in its own narrow table
-- (see postgres/00010_contacts.sql for why). A customer never contacted
-- has no row.

-- +goose Up
CREATE TABLE customer_contacts (
    customer_id       INTEGER PRIMARY KEY REFERENCES customers(id) ON DELETE CASCADE,
    last_contacted_at DATETIME NOT NULL
);
INSERT INTO customer_contacts (customer_id, last_contacted_at)
    SELECT id, last_contacted_at FROM customers WHERE last_contacted_at IS NOT NULL;
CREATE INDEX customer_contacts_recent_idx ON customer_contacts (last_contacted_at, customer_id);
DROP INDEX customers_level_contact_idx;
ALTER TABLE customers DROP COLUMN last_contacted_at;

-- +goose Down
ALTER TABLE customers ADD COLUMN last_contacted_at DATETIME;
UPDATE customers SET last_contacted_at = (SELECT last_contacted_at FROM customer_contacts WHERE customer_id = customers.id);
CREATE INDEX customers_level_contact_idx ON customers (level, last_contacted_at);
DROP TABLE customer_contacts;

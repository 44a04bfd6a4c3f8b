-- Free-text customer search (name, email, company) through an FTS5 trigram
-- index: LIKE '%…%' read every row (405 ms at 100,000 customers). Kept in
-- step with customers by triggers; searches shorter than three characters
-- still use LIKE.

-- +goose Up
CREATE VIRTUAL TABLE customers_search USING fts5(name, email, company,
    content = 'customers', content_rowid = 'id', tokenize = 'trigram');
INSERT INTO customers_search (rowid, name, email, company) SELECT id, name, email, company FROM customers;
-- +goose StatementBegin
CREATE TRIGGER customers_search_insert AFTER INSERT ON customers BEGIN
    INSERT INTO customers_search (rowid, name, email, company) VALUES (new.id, new.name, new.email, new.company);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER customers_search_delete AFTER DELETE ON customers BEGIN
    INSERT INTO customers_search (customers_search, rowid, name, email, company)
        VALUES ('delete', old.id, old.name, old.email, old.company);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER customers_search_update AFTER UPDATE OF name, email, company ON customers BEGIN
    INSERT INTO customers_search (customers_search, rowid, name, email, company)
        VALUES ('delete', old.id, old.name, old.email, old.company);
    INSERT INTO customers_search (rowid, name, email, company) VALUES (new.id, new.name, new.email, new.company);
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER customers_search_update;
DROP TRIGGER customers_search_delete;
DROP TRIGGER customers_search_insert;
DROP TABLE customers_search;

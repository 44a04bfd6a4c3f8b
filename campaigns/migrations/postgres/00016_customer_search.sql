-- Customer search ("contains", in name, email or company) through a table
-- of its own, customer_search, with a pg_trgm index over each customer's
-- three fields (see campaigns/search.go). Without it every search read
-- the whole customers table: 0.6-1.3 s at a million customers. A trigram
-- index on customers itself made searches fast but slowed every level
-- credit, which rewrites a customers row and so every index on it (a
-- check-in's p99 went from 47 to 151-165 ms); this table changes only
-- when a name, email or company does.
--
-- Triggers keep it in step. A bulk load into an empty table drops the insert one
-- and marks the table incomplete; until the worker has filled it again,
-- searches read customers as before. pg_trgm ships with PostgreSQL; where
-- this role may not install it, searches read this narrow table instead of
-- the index, and a DBA can install it later (the worker then builds it).

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN insufficient_privilege OR undefined_file OR feature_not_supported THEN
    RAISE NOTICE 'pg_trgm is not available (%); customer search reads customer_search whole', SQLERRM;
END
$$;
-- +goose StatementEnd

-- doc must be searchDoc in campaigns/search.go: the three fields as a
-- search compares them, joined by a newline, which no search term holds.
CREATE TABLE customer_search (
    customer_id BIGINT PRIMARY KEY REFERENCES customers(id) ON DELETE CASCADE,
    doc         TEXT NOT NULL
);

-- Whether customer_search holds every customer. Until the worker has
-- filled it (after this migration on a database with customers, or after
-- a bulk load), searches do not use it.
CREATE TABLE customer_search_state (
    one      BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
    complete BOOLEAN NOT NULL
);
INSERT INTO customer_search_state (complete) SELECT NOT EXISTS (SELECT 1 FROM customers);

-- +goose StatementBegin
DO $$
DECLARE
    trgm name := (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm');
BEGIN
    IF trgm IS NOT NULL THEN
        EXECUTE format('CREATE INDEX customer_search_trgm_idx ON customer_search USING gin (doc %I.gin_trgm_ops)', trgm);
    END IF;
END
$$;
-- +goose StatementEnd

-- New customers, one statement at a time (an import's batch is one insert).
-- +goose StatementBegin
CREATE FUNCTION customer_search_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customer_search (customer_id, doc)
        SELECT id, lower(name) || E'\n' || email || E'\n' || lower(company) FROM inserted
        ON CONFLICT (customer_id) DO UPDATE SET doc = EXCLUDED.doc;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER customer_search_insert AFTER INSERT ON customers
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION customer_search_inserted();

-- A changed name, email or company. Updates of anything else (a level, a
-- consent) do not fire it: PostgreSQL checks the column list first.
-- +goose StatementBegin
CREATE FUNCTION customer_search_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customer_search (customer_id, doc)
        VALUES (NEW.id, lower(NEW.name) || E'\n' || NEW.email || E'\n' || lower(NEW.company))
        ON CONFLICT (customer_id) DO UPDATE SET doc = EXCLUDED.doc;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER customer_search_update AFTER UPDATE OF name, email, company ON customers
    FOR EACH ROW
    WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.email IS DISTINCT FROM NEW.email OR OLD.company IS DISTINCT FROM NEW.company)
    EXECUTE FUNCTION customer_search_updated();

-- +goose Down
DROP TRIGGER customer_search_update ON customers;
DROP TRIGGER customer_search_insert ON customers;
DROP FUNCTION customer_search_updated();
DROP FUNCTION customer_search_inserted();
DROP TABLE customer_search_state;
DROP TABLE customer_search;

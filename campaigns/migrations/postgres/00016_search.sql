-- Customer search through a trigram index (see campaigns/search.go): a
-- search read every customer, 0.6-1.3 s at a million. pg_trgm ships with
-- PostgreSQL; where this role may not install it, search goes on reading
-- the table, and a DBA can install it later (the worker then builds the
-- index). The expression must match searchDoc in campaigns/search.go.

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN insufficient_privilege OR undefined_file OR feature_not_supported THEN
    RAISE NOTICE 'pg_trgm is not available (%); customer search reads the table', SQLERRM;
END
$$;
-- +goose StatementEnd
-- +goose StatementBegin
DO $$
DECLARE
    trgm name := (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm');
BEGIN
    IF trgm IS NOT NULL THEN
        EXECUTE format($f$CREATE INDEX customers_search_idx ON customers
            USING gin ((lower(name) || E'\n' || email || E'\n' || lower(company)) %I.gin_trgm_ops)$f$, trgm);
        ANALYZE customers; -- statistics on the expression: how many a term matches
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP INDEX IF EXISTS customers_search_idx;

-- Web processes keep the API tokens they have found in memory while they
-- listen on rapport_api_tokens (campaigns/tokencache.go). Any revocation
-- or other change to a token, by Rapport, the CLI or by hand, tells them
-- all to forget what they kept, when it commits.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION rapport_api_tokens_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('rapport_api_tokens', '');
    RETURN NULL;
END
$$;
-- +goose StatementEnd
-- Every column but last_used_at, which each process writes once a minute.
CREATE TRIGGER api_tokens_changed
    AFTER UPDATE OF id, name, role, token_hash, prefix, created_by, created_at, revoked_at OR DELETE OR TRUNCATE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION rapport_api_tokens_changed();

-- +goose Down
DROP TRIGGER api_tokens_changed ON api_tokens;
DROP FUNCTION rapport_api_tokens_changed();

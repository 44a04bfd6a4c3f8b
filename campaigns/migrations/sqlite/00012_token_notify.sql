-- Nothing on SQLite: API tokens are read per call there
-- (see postgres/00012_token_notify.sql and campaigns/tokencache.go).

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;

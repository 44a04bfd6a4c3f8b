-- The relationship audit and the dashboard at a million customers.
--
-- * The audit counts loyal customers (level 6 and up) who may be written
--   to and were not contacted lately. With consent carried in the level
--   index, that count reads the index alone; before, it read each of those
--   customers' rows, 130,000 of them across most of the table's pages
--   (0.5-0.85 s; 0.14-0.21 s now). The key is unchanged, so the list's
--   sort and filter by level read it as before.
-- * Both pages look for promotions (a level moved up from one held) among
--   every ledger row: the audit those of this quarter, the dashboard the
--   latest eight. A seed or import writes a "created" row per customer,
--   none a promotion, so both read a million rows to find few or none
--   (0.18 s and 0.09 s). This index holds the promotions alone, newest
--   last, with what the audit counts them by.

-- +goose Up
DROP INDEX customers_level_idx;
CREATE INDEX customers_level_idx ON customers (level, id) INCLUDE (consent_state);
CREATE INDEX level_ledger_promotions_idx ON level_ledger (id) INCLUDE (created_at, to_level)
    WHERE from_level > 0 AND to_level > from_level;

-- +goose Down
DROP INDEX level_ledger_promotions_idx;
DROP INDEX customers_level_idx;
CREATE INDEX customers_level_idx ON customers (level, id);

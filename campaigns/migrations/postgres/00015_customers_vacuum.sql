-- The audience preview counts customers from an index alone, which works
-- only on pages the visibility map marks all-visible. An event's answers,
-- check-ins and credits move levels here and there across the table: one
-- 8,301-guest event updated 12,689 customer rows and left 26% of the
-- table's pages unmarked at a million customers, and the preview's p95
-- went from 28 to 111 ms (the planner turned to reading the table). By
-- default autovacuum waits for 20% of a table to change, 200,000 rows
-- here, so the preview would stay that slow for weeks of campaigns. Now
-- it vacuums customers once 0.5% have changed or been added (1.9 s at a
-- million, most pages skipped as already all-visible).

-- +goose Up
ALTER TABLE customers SET (autovacuum_vacuum_scale_factor = 0.005, autovacuum_vacuum_insert_scale_factor = 0.005);

-- +goose Down
ALTER TABLE customers RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_insert_scale_factor);

-- A campaign's promotions: the customers its ledger rows moved up on
-- balance (campaigns/ledger.go, promotedBy), for its page's funnel and
-- ROI and for the ROI report. The ledger had no index by source, so each
-- read every row: a million "created" rows after a seed or an import,
-- 140-180 ms a campaign page (twice) at a million customers. This index
-- holds the campaigns' rows alone, with what the count sums, so a fresh
-- load enters none of it (campaigns/bulk.go keeps it in place).

-- +goose Up
CREATE INDEX level_ledger_campaign_idx ON level_ledger (source, customer_id) INCLUDE (from_level, to_level)
    WHERE source LIKE 'campaign:%';

-- +goose Down
DROP INDEX level_ledger_campaign_idx;

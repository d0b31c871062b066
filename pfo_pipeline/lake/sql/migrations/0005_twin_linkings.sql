-- Migration 5: the days of the pending rows a tenant's next twin-linking pass will link because
-- of the last pass's links, so that an incremental load links only around those days and its
-- own changes (twins.py); no row, and the next pass reads the whole history.
CREATE TABLE ledger.twin_linkings (
    tenant_id VARCHAR NOT NULL,
    unsettled_days DATE[] NOT NULL,
    linked_at TIMESTAMPTZ NOT NULL
);

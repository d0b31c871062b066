-- Migration 4: what a tenant's marks of internal transfers were last paired against. While the
-- tenant's own accounts are those it names, the marks are exactly those of a pairing of the whole
-- history, so an incremental load re-pairs only the days its rows can affect (transfers.py);
-- no row (or other accounts) and the next pairing reads the whole history again.
CREATE TABLE ledger.transfer_pairings (
    tenant_id VARCHAR NOT NULL,
    -- md5 of the tenant's own (non-loan) accounts and their IBANs, as pairing read them.
    own_accounts VARCHAR NOT NULL,
    paired_at TIMESTAMPTZ NOT NULL
);

-- Migration 1: the ledger's canonical records, their lineage, quarantine, loads and cursors.

CREATE SCHEMA IF NOT EXISTS ledger;

CREATE TABLE ledger.bank_accounts (
    id VARCHAR NOT NULL,
    tenant_id VARCHAR NOT NULL,
    user_id VARCHAR NOT NULL,
    connection_id VARCHAR NOT NULL,
    external_id VARCHAR NOT NULL,
    institution_id VARCHAR NOT NULL,
    institution_name VARCHAR NOT NULL,
    institution_logo_url VARCHAR,
    iban VARCHAR,
    bic VARCHAR,
    account_type VARCHAR NOT NULL,
    currency VARCHAR NOT NULL,
    display_name VARCHAR NOT NULL,
    account_number_masked VARCHAR,
    product_code VARCHAR,
    balance DECIMAL(18, 2),
    available_balance DECIMAL(18, 2),
    ownership VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    parent_account_id VARCHAR,
    last_synced_at TIMESTAMP,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    metadata JSON,
    row_hash VARCHAR NOT NULL,
    load_id VARCHAR NOT NULL
);

-- Every Powens account id ever seen, mapped to its canonical account. Powens renumbers
-- accounts (same IBAN, new id): the new id maps to the existing canonical account.
CREATE TABLE ledger.account_aliases (
    tenant_id VARCHAR NOT NULL,
    connection_id VARCHAR NOT NULL,
    external_id VARCHAR NOT NULL,
    account_id VARCHAR NOT NULL,
    identity_key VARCHAR,
    first_seen_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE ledger.bank_transactions (
    id VARCHAR NOT NULL,
    account_id VARCHAR NOT NULL,
    tenant_id VARCHAR NOT NULL,
    connection_id VARCHAR NOT NULL,
    external_id VARCHAR NOT NULL,
    amount DECIMAL(18, 2) NOT NULL,
    currency VARCHAR NOT NULL,
    direction VARCHAR NOT NULL,
    date DATE NOT NULL,
    booking_date DATE NOT NULL,
    value_date DATE,
    description VARCHAR,
    counterparty_name VARCHAR,
    counterparty_account VARCHAR,
    merchant_category_code VARCHAR,
    raw_category VARCHAR,
    standardized_category VARCHAR NOT NULL,
    category_source VARCHAR NOT NULL,
    transaction_type VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    running_balance DECIMAL(18, 2),
    metadata JSON,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    provider_updated_at TIMESTAMP,
    first_seen_at TIMESTAMPTZ NOT NULL,
    booked_at TIMESTAMP,
    deleted_at TIMESTAMP,
    twin_of_id VARCHAR,
    transfer_pair_id VARCHAR,
    row_hash VARCHAR NOT NULL,
    load_id VARCHAR NOT NULL
);

CREATE TABLE ledger.account_balances (
    id VARCHAR NOT NULL,
    account_id VARCHAR NOT NULL,
    tenant_id VARCHAR NOT NULL,
    connection_id VARCHAR NOT NULL,
    balance_type VARCHAR NOT NULL,
    current_balance DECIMAL(18, 2) NOT NULL,
    available_balance DECIMAL(18, 2),
    currency VARCHAR NOT NULL,
    last_updated_at TIMESTAMP,
    as_of_date DATE NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    metadata JSON,
    row_hash VARCHAR NOT NULL,
    load_id VARCHAR NOT NULL
);

CREATE TABLE ledger.quarantine (
    id VARCHAR NOT NULL,
    load_id VARCHAR NOT NULL,
    stream VARCHAR NOT NULL,
    tenant_id VARCHAR NOT NULL,
    connection_id VARCHAR,
    external_id VARCHAR,
    reasons JSON NOT NULL,
    record JSON NOT NULL,
    quarantined_at TIMESTAMPTZ NOT NULL,
    -- 'record': the record itself is malformed; 'held_back': a valid record waiting on
    -- something else (its account). Resolved when the record later loads: unresolved
    -- rows are what is still wrong.
    fault VARCHAR NOT NULL,
    resolved_at TIMESTAMPTZ,
    resolved_by_load VARCHAR
);

CREATE TABLE ledger.loads (
    load_id VARCHAR NOT NULL,
    tenant_id VARCHAR NOT NULL,
    connection_id VARCHAR NOT NULL,
    stream VARCHAR NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    status VARCHAR NOT NULL,
    mode VARCHAR,
    rows_in BIGINT,
    upserted BIGINT,
    unchanged BIGINT,
    quarantined BIGINT,
    tombstoned BIGINT,
    window_start VARCHAR,
    window_end VARCHAR,
    cursor_before TIMESTAMP,
    cursor_after TIMESTAMP,
    error VARCHAR,
    -- Whether Powens' data moved while the load paged, and whether that may have skipped
    -- rows (the cursor then stays put); valid rows held back (the cursor stays before
    -- them); quarantine rows this load resolved; the lake snapshot it committed.
    upstream_moved BOOLEAN,
    cursor_held BOOLEAN,
    held_back BIGINT,
    quarantine_resolved BIGINT,
    snapshot_id BIGINT
);

-- Incremental cursor: the highest Powens `last_update` applied, committed in the same
-- transaction as the rows it covers. The next sync asks from (high_watermark - overlap).
CREATE TABLE ledger.sync_cursors (
    tenant_id VARCHAR NOT NULL,
    connection_id VARCHAR NOT NULL,
    stream VARCHAR NOT NULL,
    high_watermark TIMESTAMP NOT NULL,
    load_id VARCHAR NOT NULL
);

-- A user's category for a transaction; later syncs never overwrite it.
CREATE TABLE ledger.category_overrides (
    tenant_id VARCHAR NOT NULL,
    transaction_id VARCHAR NOT NULL,
    category VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE ledger.connection_health (
    tenant_id VARCHAR NOT NULL,
    connection_id VARCHAR NOT NULL,
    checked_at TIMESTAMPTZ NOT NULL,
    status VARCHAR NOT NULL,
    state VARCHAR,
    reason VARCHAR NOT NULL
);

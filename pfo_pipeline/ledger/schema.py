"""The lake's DDL (every schema's tables) as numbered migrations, applied automatically.
DuckLake has no keys: ids are kept unique by the merge logic in `store` and proven by checks.

Conventions: times that come from Powens are naive `TIMESTAMP`s holding Powens' Europe/Paris
wall-clock exactly as sent; times of our own clock are `TIMESTAMPTZ`. Money is `DECIMAL(18,2)`.
"""

from __future__ import annotations

import duckdb

from pfo_pipeline.ledger.lake import run_transaction

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
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
        """,
    ),
    (
        2,
        """
        CREATE SCHEMA IF NOT EXISTS knowledge;
        CREATE TABLE knowledge.financial_overview (
            entry_id VARCHAR NOT NULL,
            tenant_id VARCHAR NOT NULL,
            period VARCHAR NOT NULL,
            period_start DATE NOT NULL,
            period_end DATE NOT NULL,
            generated_at TIMESTAMPTZ NOT NULL,
            expires_at DATE NOT NULL,
            content_hash VARCHAR NOT NULL,
            markdown VARCHAR NOT NULL,
            summary JSON NOT NULL
        );
        CREATE TABLE knowledge.financial_overview_chunks (
            chunk_id VARCHAR NOT NULL,
            entry_id VARCHAR NOT NULL,
            tenant_id VARCHAR NOT NULL,
            chunk_index INTEGER NOT NULL,
            content VARCHAR NOT NULL,
            token_count INTEGER NOT NULL,
            expires_at DATE NOT NULL
        );
        CREATE SCHEMA IF NOT EXISTS telemetry;
        CREATE TABLE telemetry.events (
            event_id VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            occurred_at TIMESTAMPTZ NOT NULL,
            tenant_id VARCHAR NOT NULL,
            app_id VARCHAR NOT NULL,
            blueprint VARCHAR NOT NULL,
            config_version INTEGER NOT NULL,
            slot_id VARCHAR NOT NULL,
            connection_id VARCHAR NOT NULL,
            properties JSON
        );
        CREATE SCHEMA IF NOT EXISTS analytics;
        CREATE SCHEMA IF NOT EXISTS staging;
        """,
    ),
]

LATEST_VERSION = MIGRATIONS[-1][0]


def migrate(conn: duckdb.DuckDBPyConnection) -> int:
    """Bring the lake to the latest schema version; safe to call on every connection, and from
    several processes at once (a concurrent migration is a commit conflict, retried)."""
    if _applied(conn) >= LATEST_VERSION:
        return LATEST_VERSION
    for version, ddl in MIGRATIONS:

        def apply(version: int = version, ddl: str = ddl) -> None:
            conn.execute("CREATE SCHEMA IF NOT EXISTS ledger")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS ledger.schema_migrations "
                "(version INTEGER NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
            )
            done = conn.execute(
                "SELECT count(*) FROM ledger.schema_migrations WHERE version = ?", [version]
            ).fetchall()[0][0]
            if done:
                return
            conn.execute(ddl)
            conn.execute("INSERT INTO ledger.schema_migrations VALUES (?, now())", [version])

        if _applied(conn) >= version:
            continue
        run_transaction(conn, apply, what=f"ledger schema migration {version}")
    return LATEST_VERSION


def _applied(conn: duckdb.DuckDBPyConnection) -> int:
    try:
        return conn.execute(
            "SELECT coalesce(max(version), 0) FROM ledger.schema_migrations"
        ).fetchall()[0][0]
    except duckdb.CatalogException:
        return 0

"""Asset checks on the ledger: the Pandera contract, unique ids, freshness, reconciliation, and the
second step of each workflow (the canonical listing consumers read).

Checks read whole tables across tenants: they guard the ledger file itself, which is shared.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd
import pandera.pandas as pa

from pfo_pipeline.defs.resources import LEDGER_POOL, LakeResource, ledger_connection
from pfo_pipeline.ledger.mapping import FAULT_HELD_BACK
from pfo_pipeline.ledger.records import (
    TEXT,
    AccountBalanceRecord,
    BankAccountRecord,
    BankTransactionRecord,
    failing_rows,
    record_columns,
)
from pfo_pipeline.operations import queries

RETRY_LIST_ACCOUNTS = dg.RetryPolicy(max_retries=2, delay=0.75, backoff=dg.Backoff.LINEAR)
RETRY_LIST_TRANSACTIONS = dg.RetryPolicy(max_retries=2, delay=1.0, backoff=dg.Backoff.LINEAR)
RETRY_GET_BALANCES = dg.RetryPolicy(max_retries=2, delay=0.75, backoff=dg.Backoff.LINEAR)
FRESHNESS_LIMIT = timedelta(hours=26)


def _read_frame(duckdb: LakeResource, table: str, model: type[pa.DataFrameModel]) -> pd.DataFrame:
    columns = [c for c in record_columns(model) if c != "original_currency"]
    with ledger_connection(duckdb) as conn:
        arrow = conn.sql(f"SELECT {', '.join(columns)} FROM ledger.{table}").to_arrow_table()
    frame = arrow.to_pandas(types_mapper=pd.ArrowDtype)
    for name in frame.columns:  # Arrow strings as the records' text dtype
        if str(frame[name].dtype).startswith(("string", "large_string")):
            frame[name] = frame[name].astype(TEXT)
    if "original_currency" in record_columns(model):
        frame["original_currency"] = pd.Series([None] * len(frame), dtype=TEXT)
    return frame


def _schema_check(
    duckdb: LakeResource, table: str, model: type[pa.DataFrameModel]
) -> dg.AssetCheckResult:
    frame = _read_frame(duckdb, table, model)
    try:
        model.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        try:
            rows = failing_rows(errors)
            failing, checks = len(rows), sorted({r for v in rows.values() for r in v})[:20]
        except pa.errors.SchemaErrors:
            failing, checks = len(frame), ["column-level failure: dtype or missing column"]
        return dg.AssetCheckResult(
            passed=False,
            metadata={"rows": len(frame), "failing_rows": failing, "failed_checks": checks},
        )
    return dg.AssetCheckResult(passed=True, metadata={"rows": len(frame)})


@dg.asset_check(asset="bank_accounts", blocking=True, description="Rows match BankAccountRecord.")
def bank_accounts_schema(duckdb: LakeResource) -> dg.AssetCheckResult:
    return _schema_check(duckdb, "bank_accounts", BankAccountRecord)


@dg.asset_check(
    asset="bank_transactions", blocking=True, description="Rows match BankTransactionRecord."
)
def bank_transactions_schema(duckdb: LakeResource) -> dg.AssetCheckResult:
    return _schema_check(duckdb, "bank_transactions", BankTransactionRecord)


@dg.asset_check(
    asset="account_balances", blocking=True, description="Rows match AccountBalanceRecord."
)
def account_balances_schema(duckdb: LakeResource) -> dg.AssetCheckResult:
    return _schema_check(duckdb, "account_balances", AccountBalanceRecord)


def _unique_check(duckdb: LakeResource, table: str, key: str) -> dg.AssetCheckResult:
    with ledger_connection(duckdb) as conn:
        total, distinct = conn.execute(
            f"SELECT count(*), count(DISTINCT {key}) FROM ledger.{table}"
        ).fetchall()[0]
    return dg.AssetCheckResult(
        passed=total == distinct, metadata={"rows": total, "duplicates": total - distinct}
    )


@dg.asset_check(asset="bank_accounts", description="No duplicate canonical account ids.")
def bank_accounts_unique_ids(duckdb: LakeResource) -> dg.AssetCheckResult:
    return _unique_check(duckdb, "bank_accounts", "id")


@dg.asset_check(
    asset="bank_transactions",
    description="No duplicate canonical ids, and no Powens id twice for one connection.",
)
def bank_transactions_unique_ids(duckdb: LakeResource) -> dg.AssetCheckResult:
    by_id = _unique_check(duckdb, "bank_transactions", "id")
    by_external = _unique_check(
        duckdb, "bank_transactions", "(tenant_id, connection_id, external_id)"
    )
    return dg.AssetCheckResult(
        passed=by_id.passed and by_external.passed,
        metadata={
            "rows": by_id.metadata["rows"],
            "duplicate_ids": by_id.metadata["duplicates"],
            "duplicate_powens_ids": by_external.metadata["duplicates"],
        },
    )


@dg.asset_check(asset="account_balances", description="One snapshot per account, type and day.")
def account_balances_unique_ids(duckdb: LakeResource) -> dg.AssetCheckResult:
    return _unique_check(duckdb, "account_balances", "(account_id, balance_type, as_of_date)")


@dg.asset_check(
    asset="bank_transactions",
    description="Quarantine holds only records that are themselves malformed: warns (with the "
    "count) when valid rows are held back through no fault of their own, e.g. rows of an account "
    "the accounts sync has not seen yet. They load, and their quarantine rows resolve, as soon as "
    "the account is known.",
)
def quarantine_holds_only_malformed_records(duckdb: LakeResource) -> dg.AssetCheckResult:
    with ledger_connection(duckdb) as conn:
        rows = conn.execute(
            "SELECT stream, fault, count(*) FILTER (WHERE resolved_at IS NULL), "
            "count(*) FILTER (WHERE resolved_at IS NOT NULL) "
            "FROM ledger.quarantine GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    held = {stream: open_ for stream, fault, open_, _ in rows if fault == FAULT_HELD_BACK}
    held_total = sum(held.values())
    return dg.AssetCheckResult(
        passed=held_total == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{held_total} valid rows held back in quarantine (not malformed): "
            + ", ".join(f"{stream} {count}" for stream, count in held.items() if count)
            + ". Run the accounts sync, then the transactions sync."
            if held_total
            else "Every open quarantine row is a malformed record."
        ),
        metadata={
            "held_back_open": held_total,
            "malformed_open": sum(o for _, f, o, _ in rows if f != FAULT_HELD_BACK),
            "resolved": sum(r for *_, r in rows),
        },
    )


def _freshness(duckdb: LakeResource, stream: str) -> dg.AssetCheckResult:
    with ledger_connection(duckdb) as conn:
        rows = conn.execute(
            "SELECT tenant_id, max(finished_at) FROM ledger.loads "
            "WHERE stream = ? AND status = 'succeeded' GROUP BY tenant_id ORDER BY tenant_id",
            [stream],
        ).fetchall()
    now = datetime.now(UTC)
    stale = [tenant for tenant, finished in rows if now - finished > FRESHNESS_LIMIT]
    return dg.AssetCheckResult(
        passed=bool(rows) and not stale,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "limit_hours": FRESHNESS_LIMIT.total_seconds() / 3600,
            "stale_tenants": stale,
            "last_loads": {tenant: finished.isoformat() for tenant, finished in rows},
        },
    )


@dg.asset_check(asset="bank_transactions", description="A successful load in the last 26 hours.")
def bank_transactions_freshness(duckdb: LakeResource) -> dg.AssetCheckResult:
    return _freshness(duckdb, "transactions")


@dg.asset_check(asset="account_balances", description="A snapshot taken in the last 26 hours.")
def account_balances_freshness(duckdb: LakeResource) -> dg.AssetCheckResult:
    return _freshness(duckdb, "balances")


RECONCILIATION_SQL = """
-- Between two consecutive snapshots of an account, the balance moves by exactly the booked
-- transactions Powens applied in between: booked (by Powens' clock) after the first snapshot's
-- `last_updated_at` and up to the second's, minus booked rows deleted in that interval.
WITH snaps AS (
    SELECT account_id, as_of_date, current_balance, last_updated_at,
           lag(current_balance) OVER w AS prev_balance,
           lag(last_updated_at) OVER w AS prev_updated_at,
           lag(as_of_date) OVER w AS prev_date
    FROM ledger.account_balances WHERE balance_type = 'current'
    WINDOW w AS (PARTITION BY account_id ORDER BY as_of_date)
)
SELECT s.account_id, s.prev_date, s.as_of_date,
       s.current_balance - s.prev_balance AS balance_change,
       coalesce(sum(CASE
           WHEN t.booked_at > s.prev_updated_at AND t.booked_at <= s.last_updated_at
                AND (t.deleted_at IS NULL OR t.deleted_at > s.last_updated_at) THEN t.amount
           WHEN t.booked_at <= s.prev_updated_at
                AND t.deleted_at > s.prev_updated_at AND t.deleted_at <= s.last_updated_at
                THEN -t.amount
           ELSE 0 END), 0) AS transactions_sum
FROM snaps s
LEFT JOIN ledger.bank_transactions t ON t.account_id = s.account_id AND t.booked_at IS NOT NULL
WHERE s.prev_balance IS NOT NULL
GROUP BY ALL
"""


@dg.asset_check(
    asset="account_balances",
    additional_deps=["bank_transactions"],
    description="Balance change between consecutive snapshots = booked transactions in between.",
)
def balances_reconcile_with_transactions(duckdb: LakeResource) -> dg.AssetCheckResult:
    with ledger_connection(duckdb) as conn:
        rows = conn.execute(
            f"SELECT * FROM ({RECONCILIATION_SQL}) WHERE abs(balance_change - transactions_sum) > 0.005"
        ).fetchall()
        pairs = conn.execute(f"SELECT count(*) FROM ({RECONCILIATION_SQL})").fetchall()[0][0]
    metadata = {
        "snapshot_pairs_checked": pairs,
        "mismatches": len(rows),
        "mismatched_accounts": sorted({r[0] for r in rows})[:20],
    }
    if not pairs:
        # Nothing compared is not a pass: say why, as a warning.
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description="Nothing to reconcile yet: no account has two balance snapshots (one "
            "balance refresh per day builds them).",
            metadata=metadata,
        )
    return dg.AssetCheckResult(passed=not rows, metadata=metadata)


# --- the second step of each workflow: the canonical read consumers use -------------------


def _page_through(fetch) -> int:
    count, cursor = 0, None
    while True:
        page = fetch(cursor)
        count += len(page.items)
        if not page.has_more:
            return count
        cursor = page.next_cursor


@dg.asset_check(
    asset="bank_accounts",
    retry_policy=RETRY_LIST_ACCOUNTS,
    pool=LEDGER_POOL,
    description="`accounts.list` (workflow step fetch-accounts) returns every ledger account.",
)
def accounts_listing(duckdb: LakeResource) -> dg.AssetCheckResult:
    with ledger_connection(duckdb) as conn:
        tenants = [
            t
            for (t,) in conn.execute(
                "SELECT DISTINCT tenant_id FROM ledger.bank_accounts"
            ).fetchall()
        ]
        listed = {
            tenant: _page_through(
                lambda c, t=tenant: queries.list_accounts(conn, t, cursor=c, page_size=100)
            )
            for tenant in tenants
        }
        stored = dict(
            conn.execute(
                "SELECT tenant_id, count(*) FROM ledger.bank_accounts GROUP BY 1"
            ).fetchall()
        )
    return dg.AssetCheckResult(passed=listed == stored, metadata={"listed": listed})


@dg.asset_check(
    asset="bank_transactions",
    retry_policy=RETRY_LIST_TRANSACTIONS,
    pool=LEDGER_POOL,
    description="`transactions.list` (workflow step list-transactions) pages through the newest "
    "transactions of every account without gap or repeat.",
)
def transactions_listing(duckdb: LakeResource) -> dg.AssetCheckResult:
    with ledger_connection(duckdb) as conn:
        accounts = conn.execute(
            "SELECT tenant_id, account_id, count(*) FROM ledger.bank_transactions "
            "WHERE date >= current_date - 31 GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        mismatched = []
        for tenant, account, expected in accounts:
            seen = _page_through(
                lambda c, t=tenant, a=account: queries.list_transactions(
                    conn,
                    t,
                    a,
                    date_from=datetime.now(UTC).date() - timedelta(days=31),
                    cursor=c,
                    page_size=200,
                )
            )
            if seen != expected:
                mismatched.append(account)
    return dg.AssetCheckResult(
        passed=not mismatched,
        metadata={"accounts_listed": len(accounts), "mismatched_accounts": mismatched},
    )


@dg.asset_check(
    asset="account_balances",
    retry_policy=RETRY_GET_BALANCES,
    pool=LEDGER_POOL,
    description="`balances.get` (workflow step fetch-balances) returns a latest snapshot for "
    "every account that has one.",
)
def balances_readable(duckdb: LakeResource) -> dg.AssetCheckResult:
    with ledger_connection(duckdb) as conn:
        accounts = conn.execute(
            "SELECT DISTINCT tenant_id, account_id FROM ledger.account_balances ORDER BY ALL"
        ).fetchall()
        missing = [a for t, a in accounts if not queries.get_balances(conn, t, a)[0]]
    return dg.AssetCheckResult(
        passed=not missing, metadata={"accounts": len(accounts), "missing": missing}
    )

"""Asset checks on the ledger that need more than the rows a sync just wrote: held-back rows in
quarantine, freshness, balance reconciliation, and the second step of each workflow (the canonical
listing consumers read). The contract and unique-id checks run in the sync's own step
(`step_checks`).

Checks read whole tables across tenants: they guard the ledger itself, which is shared.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from pfo_pipeline.defs.resources import LAKE, LakeResource
from pfo_pipeline.lake import one_snapshot
from pfo_pipeline.ledger.reconciliation import reconcile_balances
from pfo_pipeline.ledger.types import FAULT_HELD_BACK
from pfo_pipeline.operations import queries

RETRY_LIST_ACCOUNTS = dg.RetryPolicy(max_retries=2, delay=0.75, backoff=dg.Backoff.LINEAR)
RETRY_LIST_TRANSACTIONS = dg.RetryPolicy(max_retries=2, delay=1.0, backoff=dg.Backoff.LINEAR)
RETRY_GET_BALANCES = dg.RetryPolicy(max_retries=2, delay=0.75, backoff=dg.Backoff.LINEAR)
FRESHNESS_LIMIT = timedelta(hours=26)


@dg.asset_check(
    asset="bank_transactions",
    description="Quarantine holds only records that are themselves malformed: warns (with the "
    "count) when valid rows are held back through no fault of their own, e.g. rows of an account "
    "the accounts sync has not seen yet. They load, and their quarantine rows resolve, as soon as "
    "the account is known.",
)
def quarantine_holds_only_malformed_records(lake: LakeResource) -> dg.AssetCheckResult:
    with lake.get_connection() as conn:
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


def _freshness(lake: LakeResource, stream: str) -> dg.AssetCheckResult:
    with lake.get_connection() as conn:
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
def bank_transactions_freshness(lake: LakeResource) -> dg.AssetCheckResult:
    return _freshness(lake, "transactions")


@dg.asset_check(asset="account_balances", description="A snapshot taken in the last 26 hours.")
def account_balances_freshness(lake: LakeResource) -> dg.AssetCheckResult:
    return _freshness(lake, "balances")


@dg.asset_check(
    asset="account_balances",
    additional_deps=["bank_transactions"],
    description="Balance change between consecutive snapshots = booked transactions in between.",
)
def balances_reconcile_with_transactions(lake: LakeResource) -> dg.AssetCheckResult:
    with lake.get_connection() as conn:
        result = reconcile_balances(conn)
    metadata = {
        "snapshot_pairs_checked": result.pairs_checked,
        "mismatches": result.mismatches,
        "mismatched_accounts": result.mismatched_accounts[:20],
    }
    if not result.pairs_checked:
        # A correct first sync: nothing contradicts the ledger, and the description says the
        # check has compared nothing yet (a red check here taught users to ignore it).
        return dg.AssetCheckResult(
            passed=True,
            description="Nothing to compare yet: no account has two balance snapshots (one "
            "balance refresh per day builds them).",
            metadata=metadata,
        )
    return dg.AssetCheckResult(
        passed=not result.mismatches,
        description=f"{result.pairs_checked} consecutive snapshot pairs compared, "
        f"{result.mismatches} mismatched.",
        metadata=metadata,
    )


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
    pool=LAKE,
    description="`accounts.list` (workflow step fetch-accounts) returns every ledger account.",
)
def accounts_listing(lake: LakeResource) -> dg.AssetCheckResult:
    with lake.get_connection() as conn, one_snapshot(conn):
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
    pool=LAKE,
    description="`transactions.list` (workflow step list-transactions) pages through the newest "
    "transactions of every account without gap or repeat.",
)
def transactions_listing(lake: LakeResource) -> dg.AssetCheckResult:
    with lake.get_connection() as conn, one_snapshot(conn):
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
                    # The largest page the read API serves: each page is a query of its own,
                    # so 200 a page cost a million-row ledger's check 4-6 s.
                    page_size=queries.MAX_PAGE_SIZE,
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
    pool=LAKE,
    description="`balances.get` (workflow step fetch-balances) returns a latest snapshot for "
    "every account that has one.",
)
def balances_readable(lake: LakeResource) -> dg.AssetCheckResult:
    with lake.get_connection() as conn, one_snapshot(conn):
        accounts = conn.execute(
            "SELECT DISTINCT tenant_id, account_id FROM ledger.account_balances ORDER BY ALL"
        ).fetchall()
        missing = [a for t, a in accounts if not queries.get_balances(conn, t, a)[0]]
    return dg.AssetCheckResult(
        passed=not missing, metadata={"accounts": len(accounts), "missing": missing}
    )

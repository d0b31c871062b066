"""What the ledger must hold, read independently of the code under test, shared by the sync,
churn, concurrent-fetch, lake and scale-out tests: the emulator's rows as served over HTTP, the
ledger's rows, the comparison between them, and the killable sync script."""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.conftest import FAMILY, query


def served_transactions(emulator, user_id: int = 1) -> dict[int, dict]:
    """Everything the emulator serves to a user (deleted included), read independently: the
    whole history (`min_date` stated), by `_links.next`, or by `offset` when a list has none."""
    token = emulator.token_for(user_id)
    rows: dict[int, dict] = {}
    url = f"{emulator.base_url}/users/me/transactions"
    base = {"limit": 1000, "all": "", "min_date": "1900-01-01"}
    params: dict | None = base
    offset = 0
    while url:
        response = httpx.get(url, params=params, headers={"Authorization": f"Bearer {token}"})
        body = response.json()
        if response.status_code == 400 and body.get("code") == "noAccount":
            return rows
        for tx in body["transactions"]:
            rows[tx["id"]] = tx
        if "_links" in body:
            url, params = (body["_links"]["next"] or {}).get("href"), None
        elif len(body["transactions"]) == base["limit"]:
            offset += base["limit"]
            params = {**base, "offset": offset}
        else:
            url = None
    return rows


def expected_status(tx: dict) -> str:
    return "cancelled" if tx.get("deleted") else ("pending" if tx.get("coming") else "booked")


def ledger_transactions(ledger: Path, tenant: str = FAMILY) -> dict[int, tuple]:
    rows = query(
        ledger,
        "SELECT external_id, status, amount, id, account_id, twin_of_id, description "
        "FROM ledger.bank_transactions WHERE tenant_id = ?",
        [tenant],
    )
    return {int(r[0]): r[1:] for r in rows}


def assert_ledger_matches_emulator(ledger: Path, emulator) -> None:
    served = served_transactions(emulator)
    stored = ledger_transactions(ledger)
    assert set(stored) == set(served)
    for powens_id, tx in served.items():
        status, amount, *_ = stored[powens_id]
        assert status == expected_status(tx), powens_id
        assert float(amount) == pytest.approx(tx["value"]), powens_id


KILLED_SYNC = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from pfo_pipeline import lake
    from pfo_pipeline.operations.powens_clients import powens_client_for
    from pfo_pipeline.tenancy.config import load_tenants
    from pfo_pipeline.operations.sync_context import new_context
    from pfo_pipeline.operations.transactions_sync import TransactionsSyncOptions, sync_transactions

    tenants_file, ledger_path, where = sys.argv[1], sys.argv[2], sys.argv[3]
    tenant = load_tenants(Path(tenants_file))["tenant.family-office"]
    binding = tenant.primary_open_banking

    def pause(number):
        print(f"BATCH {number}", flush=True)
        if number >= 2 and where == "between-batches":
            time.sleep(30)  # the parent kills us here, after a batch was staged

    if where == "inside-commit":
        from pfo_pipeline.ledger import transactions_commit

        marked = transactions_commit.mark_internal_transfers

        def mark_then_stall(conn, tenant_id, changed_days):
            # Runs inside the commit's transaction, after the rows were written to it.
            changed = marked(conn, tenant_id, changed_days)
            print("IN COMMIT", flush=True)
            time.sleep(30)  # the parent kills us here, mid-transaction
            return changed

        transactions_commit.mark_internal_transfers = mark_then_stall

    with (
        powens_client_for(tenant) as client,
        lake.open_lake(lake.LakeLocation.in_folder(ledger_path)) as conn,
    ):
        ctx = new_context(tenant.tenant_id, binding.connection_id, binding.powens_user_id)
        sync_transactions(conn, client, ctx, TransactionsSyncOptions(batch_rows=400), on_batch=pause)
    """
)


# Churn scenarios: the emulator's clock and the fault mix they run under.
NOW = datetime(2026, 5, 29, 8, 0, 0)
FAULT_MIX = {
    "rate_429": 0.1,
    "retry_after_s": 0.01,
    "rate_503": 0.1,
    "rate_token_expiry": 0.1,
    "seed": 7,
}
# What the ledger must agree on, row by row, whichever syncs built it (our own clock and load ids
# differ by construction; `booked_at` keeps the first time a row was seen booked).
CONTENT = (
    "SELECT id, account_id, external_id, amount, currency, direction, date, booking_date, "
    "description, standardized_category, transaction_type, status, provider_updated_at, "
    "deleted_at, twin_of_id, transfer_pair_id FROM ledger.bank_transactions ORDER BY id"
)
# The assets a clean sync runs to be compared on CONTENT: the accounts the transactions point at,
# and the transactions (balances and the connection's health have no part in it).
RECORDS_COMPARED = ("bank_accounts", "bank_transactions")

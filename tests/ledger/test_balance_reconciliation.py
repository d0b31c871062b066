"""Balance-vs-transaction reconciliation on a real (fresh) DuckLake: a complete history
reconciles, a missing transaction is named by account, and one snapshot compares nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pfo_pipeline import lake
from pfo_pipeline.lake.migrations import migrate
from pfo_pipeline.ledger.reconciliation import reconcile_balances

NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def conn(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = lake.connect(lake.LakeLocation.in_folder(tmp_path / "ledger"), shared=False)
    migrate(connection)
    yield connection
    connection.close()


def snapshot(conn: duckdb.DuckDBPyConnection, account: str, day: int, balance: str) -> None:
    conn.execute(
        "INSERT INTO ledger.account_balances (id, account_id, tenant_id, connection_id, "
        "balance_type, current_balance, currency, last_updated_at, as_of_date, created_at, "
        "row_hash, load_id) VALUES (?, ?, 't', 'c', 'current', ?, 'EUR', ?, ?, ?, 'h', 'l')",
        [f"{account}-{day}", account, Decimal(balance), datetime(2026, 2, day, 12),
         date(2026, 2, day), NOW],
    )  # fmt: skip


def booked(conn: duckdb.DuckDBPyConnection, account: str, day: int, amount: str) -> None:
    conn.execute(
        "INSERT INTO ledger.bank_transactions (id, account_id, tenant_id, connection_id, "
        "external_id, amount, currency, direction, date, booking_date, standardized_category, "
        "category_source, transaction_type, status, created_at, updated_at, first_seen_at, "
        "booked_at, row_hash, load_id) VALUES (?, ?, 't', 'c', ?, ?, 'EUR', 'debit', ?, ?, "
        "'other', 'rules', 'card', 'booked', ?, ?, ?, ?, 'h', 'l')",
        [f"{account}-tx-{day}", account, str(day), Decimal(amount), date(2026, 2, day),
         date(2026, 2, day), NOW, NOW, NOW, datetime(2026, 2, day, 9)],
    )  # fmt: skip


def test_one_snapshot_compares_nothing(conn: duckdb.DuckDBPyConnection) -> None:
    snapshot(conn, "acc_a", 1, "100.00")
    result = reconcile_balances(conn)
    assert (result.pairs_checked, result.mismatches, result.mismatched_accounts) == (0, 0, [])


def test_a_missing_transaction_names_its_account(conn: duckdb.DuckDBPyConnection) -> None:
    # acc_a: 100 -> 70 with a booked -30 in between: reconciles.
    snapshot(conn, "acc_a", 1, "100.00")
    booked(conn, "acc_a", 2, "-30.00")
    snapshot(conn, "acc_a", 3, "70.00")
    # acc_b: 50 -> 40 with nothing booked in between: a transaction is missing.
    snapshot(conn, "acc_b", 1, "50.00")
    snapshot(conn, "acc_b", 3, "40.00")
    result = reconcile_balances(conn)
    assert result.pairs_checked == 2
    assert result.mismatches == 1
    assert result.mismatched_accounts == ["acc_b"]
    booked(conn, "acc_b", 2, "-10.00")
    assert reconcile_balances(conn).mismatches == 0

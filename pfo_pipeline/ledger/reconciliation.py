"""Balances against transactions: Powens keeps no balance history, so the ledger's own snapshots
are the only proof that the transactions are complete. Between two consecutive snapshots of an
account the balance must move by exactly the booked transactions applied in between."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import duckdb

from pfo_pipeline.sql_files import load_sql

# Half a cent: amounts are DECIMAL(18,2), so any real difference is at least a cent.
TOLERANCE = Decimal("0.005")


@dataclass(frozen=True)
class Reconciliation:
    pairs_checked: int  # consecutive snapshot pairs compared (0: nothing to compare yet)
    mismatches: int
    mismatched_accounts: list[str]


def reconcile_balances(conn: duckdb.DuckDBPyConnection) -> Reconciliation:
    """Compare every account's consecutive `current` snapshots with the transactions between."""
    pairs, mismatches, accounts = conn.execute(
        load_sql(__name__, "balance_reconciliation"), {"tolerance": TOLERANCE}
    ).fetchall()[0]
    return Reconciliation(int(pairs), int(mismatches), list(accounts))

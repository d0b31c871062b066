"""Incremental syncs derive internal transfers (and twins) only around what they changed: through
the real emulator, a ledger kept up to date by an incremental sync holds exactly what a full
sync of the final state gives, and the incremental one did not pair the whole history again."""

from __future__ import annotations

from pathlib import Path

from pfo_pipeline.operations.accounts_sync import sync_accounts
from pfo_pipeline.operations.sync_context import new_context
from pfo_pipeline.operations.transactions_sync import TransactionsSyncResult, sync_transactions
from pfo_pipeline.powens.client import PowensClient
from powens_emulator import EmulatorConfig, start_emulator
from tests.conftest import CLIENT_ID, CLIENT_SECRET, FAMILY, open_ledger
from tests.ledger_expectations import CONTENT, NOW

CONNECTION = "conn-powens-primary"


def sync_family(conn, client: PowensClient) -> TransactionsSyncResult:
    """The accounts, then the transactions (as the jobs run them)."""
    sync_accounts(conn, client, new_context(FAMILY, CONNECTION, 1))
    return sync_transactions(conn, client, new_context(FAMILY, CONNECTION, 1))


def test_an_incremental_sync_leaves_the_transfers_and_twins_of_a_full_sync(
    tmp_path: Path, powens_env
) -> None:
    with start_emulator(EmulatorConfig(seed=17, transactions=2000, now=NOW)) as emulator:
        client = PowensClient(
            emulator.base_url, user_id=1, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
        )
        conn = open_ledger(tmp_path / "ledger")
        try:
            assert sync_family(conn, client).mode == "full"
            whole = conn.execute("SELECT * FROM ledger.transfer_pairings").fetchall()
            pairs_before = conn.execute(
                "SELECT count(DISTINCT transfer_pair_id) FROM ledger.bank_transactions"
            ).fetchall()[0][0]
            emulator.advance(days=37)  # the savings account is renumbered on the first day
            result = sync_family(conn, client)
            assert result.mode == "incremental" and result.stats.upserted > 0
            # The incremental pairing was scoped: the last whole one is still the full sync's.
            assert conn.execute("SELECT * FROM ledger.transfer_pairings").fetchall() == whole
            pairs_after, twins_linked = conn.execute(
                "SELECT count(DISTINCT transfer_pair_id), count(twin_of_id) "
                "FROM ledger.bank_transactions"
            ).fetchall()[0]
            assert pairs_after > pairs_before and twins_linked > 0
            incremental = conn.execute(CONTENT).fetchall()
        finally:
            conn.close()

        clean = open_ledger(tmp_path / "clean")
        try:
            assert sync_family(clean, client).mode == "full"
            assert clean.execute(CONTENT).fetchall() == incremental
        finally:
            clean.close()
            client.close()

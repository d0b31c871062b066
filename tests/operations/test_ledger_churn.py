"""Nothing valid is ever lost: Powens keeps changing its data while we page through it,
and a transactions sync may run before the accounts sync has seen a new account.

A sync during which Powens changed, followed by one more sync, must equal a clean sync of the
final state; valid rows never end in quarantine for a reason that is not their own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pfo_pipeline.ledger.types import FAULT_HELD_BACK
from pfo_pipeline.operations.accounts_sync import sync_accounts
from pfo_pipeline.operations.sync_context import new_context
from pfo_pipeline.operations.transactions_sync import sync_transactions
from pfo_pipeline.powens.client import PowensClient
from powens_emulator import EmulatorConfig, FaultConfig, start_emulator
from tests.conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    FAMILY,
    materialize_ledger,
    open_ledger,
    query,
    write_tenants_file,
)
from tests.ledger_expectations import (
    CONTENT,
    FAULT_MIX,
    NOW,
    RECORDS_COMPARED,
    assert_ledger_matches_emulator,
)


def no_overlap() -> dict:
    """The worst case for a cursor rule: no safety overlap at all; small pages, so that Powens
    changes between many page requests. One page chain: Powens' changes and faults then meet the
    requests in one order, the same on every run and machine (with several chains, which row a
    change hits depends on timing; test_concurrent_fetch covers changes under chains)."""
    config = {"overlap_minutes": 0, "page_size": 100, "fetch_concurrency": 1}
    return {"ops": {"bank_transactions": {"config": config}}}


def clean_sync_of_final_state(emulator, tenants: Path, tmp_path: Path) -> Path:
    emulator.set_faults(FaultConfig())
    clean = tmp_path / "clean"
    assert materialize_ledger(tenants, clean, FAMILY, assets=RECORDS_COMPARED).success
    return clean


def loads(ledger: Path) -> list[tuple]:
    return query(
        ledger,
        "SELECT mode, upstream_moved, cursor_held, quarantined FROM ledger.loads "
        "WHERE stream = 'transactions' ORDER BY started_at",
    )


@pytest.mark.parametrize("faults", [{}, FAULT_MIX], ids=["churn", "churn+fault-mix"])
def test_a_first_sync_while_powens_changes_converges_after_one_more(
    tmp_path, powens_env, faults
) -> None:
    config = EmulatorConfig(seed=12, transactions=3000, now=NOW)
    with start_emulator(config) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        ledger = tmp_path / "ledger"
        assert materialize_ledger(tenants, ledger, FAMILY, assets=("bank_accounts",)).success
        emulator.set_faults(FaultConfig(churn_per_page=1, **faults))
        churned = materialize_ledger(
            tenants,
            ledger,
            FAMILY,
            assets=("bank_transactions",),
            run_config=no_overlap(),
            max_attempts=12,
        )
        assert churned.success
        assert emulator.state.churned >= 8  # rows inserted, moved up, edited and moved down
        metadata = churned.asset_materializations_for_node("bank_transactions")[0].metadata
        assert metadata["duplicates_merged"].value > 0 and metadata["upstream_moved"].value
        # A repeated row is not an error of the record: nothing went to quarantine.
        assert metadata["quarantined"].value == 0
        assert query(ledger, "SELECT count(*) FROM ledger.quarantine")[0][0] == 0

        emulator.set_faults(FaultConfig(**faults))
        again = materialize_ledger(
            tenants, ledger, FAMILY, assets=("bank_transactions",), run_config=no_overlap(),
            max_attempts=12,
        )  # fmt: skip
        assert again.success
        emulator.set_faults(FaultConfig())
        assert_ledger_matches_emulator(ledger, emulator)
        clean = clean_sync_of_final_state(emulator, tenants, tmp_path)
        assert query(ledger, CONTENT) == query(clean, CONTENT)


@pytest.mark.parametrize("faults", [{}, FAULT_MIX], ids=["churn", "churn+fault-mix"])
def test_an_incremental_sync_while_powens_changes_converges_after_one_more(
    tmp_path, powens_env, faults
) -> None:
    """The change made early in a long sync, then later changes it did see: with the cursor at
    the largest `last_update` seen (no overlap), the early one fell behind it and was lost."""
    config = EmulatorConfig(seed=13, transactions=6000, now=NOW)
    with start_emulator(config) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        ledger = tmp_path / "ledger"
        assert materialize_ledger(tenants, ledger, FAMILY, assets=RECORDS_COMPARED).success
        emulator.advance(days=40)  # enough changes for an incremental read of several pages
        emulator.set_faults(FaultConfig(churn_per_page=3, **faults))
        churned = materialize_ledger(
            tenants, ledger, FAMILY, assets=("bank_transactions",), run_config=no_overlap(),
            max_attempts=12,
        )  # fmt: skip
        assert churned.success
        assert emulator.state.churned >= 3
        emulator.set_faults(FaultConfig(**faults))
        assert materialize_ledger(
            tenants, ledger, FAMILY, assets=("bank_accounts", "bank_transactions"),
            run_config=no_overlap(), max_attempts=12,
        ).success  # fmt: skip
        emulator.set_faults(FaultConfig())
        assert_ledger_matches_emulator(ledger, emulator)
        clean = clean_sync_of_final_state(emulator, tenants, tmp_path)
        assert query(ledger, CONTENT) == query(clean, CONTENT)
        modes = [mode for mode, *_ in loads(ledger)]
        assert modes[-2:] == ["incremental", "incremental"]


def test_the_cursor_stays_put_when_a_row_moved_down_past_the_read_position(
    tmp_path, powens_env
) -> None:
    """A backdated row moves below the pages read and pushes an unchanged row past the read
    position: no cursor after that sync is safe, so it stays where it was."""
    config = EmulatorConfig(seed=14, transactions=6000, now=NOW)
    with start_emulator(config) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        ledger = tmp_path / "ledger"
        assert materialize_ledger(tenants, ledger, FAMILY, assets=RECORDS_COMPARED).success
        cursor_before = query(ledger, "SELECT high_watermark FROM ledger.sync_cursors")[0][0]
        emulator.advance(days=40)
        emulator.emulator.world.churned = 3  # the next change is a backdated row
        emulator.set_faults(FaultConfig(churn_per_page=1))
        result = materialize_ledger(
            tenants, ledger, FAMILY, assets=("bank_transactions",), run_config=no_overlap()
        )
        assert result.success
        metadata = result.asset_materializations_for_node("bank_transactions")[0].metadata
        assert metadata["cursor_held"].value
        assert query(ledger, "SELECT high_watermark FROM ledger.sync_cursors")[0][0] == (
            cursor_before
        )
        emulator.set_faults(FaultConfig())
        assert materialize_ledger(
            tenants, ledger, FAMILY, assets=("bank_accounts", "bank_transactions"),
            run_config=no_overlap(),
        ).success  # fmt: skip
        assert_ledger_matches_emulator(ledger, emulator)


def test_a_transactions_sync_before_any_accounts_sync_still_lands_every_row(
    tmp_path, powens_env
) -> None:
    """A webhook can start the transactions sync before the accounts sync ever ran: the sync
    learns the accounts first, and nothing is quarantined."""
    with start_emulator(EmulatorConfig(seed=15, transactions=2000, now=NOW)) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        ledger = tmp_path / "ledger"
        result = materialize_ledger(tenants, ledger, FAMILY, assets=("bank_transactions",))
        assert result.success
        metadata = result.asset_materializations_for_node("bank_transactions")[0].metadata
        assert metadata["accounts_synced_first"].value
        assert query(ledger, "SELECT count(*) FROM ledger.quarantine")[0][0] == 0
        assert_ledger_matches_emulator(ledger, emulator)


class _AccountNotListedYet:
    """The real client, except that Powens' account list lags one account behind its
    transactions (as when a bank adds an account mid-sync)."""

    def __init__(self, client: PowensClient, hidden: int) -> None:
        self._client, self._hidden = client, hidden

    def list_accounts(self, include_disabled: bool = True) -> list:
        rows = self._client.list_accounts(include_disabled=include_disabled)
        return [a for a in rows if a.get("id") != self._hidden]

    def __getattr__(self, name: str):
        return getattr(self._client, name)


def test_rows_of_an_account_powens_does_not_list_yet_are_held_back_then_land(
    tmp_path, powens_env
) -> None:
    with start_emulator(EmulatorConfig(seed=16, transactions=2000, now=NOW)) as emulator:
        ledger = tmp_path / "ledger"
        client = PowensClient(
            emulator.base_url, user_id=1, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
        )
        conn = open_ledger(ledger)
        try:
            lagging = _AccountNotListedYet(client, hidden=102)
            ctx = new_context(FAMILY, "conn-powens-primary", 1)
            sync_accounts(conn, lagging, ctx)
            result = sync_transactions(conn, lagging, new_context(FAMILY, "conn-powens-primary", 1))
            held = result.stats.held_back
            assert held > 0
            faults = conn.execute(
                "SELECT DISTINCT fault FROM ledger.quarantine WHERE resolved_at IS NULL"
            ).fetchall()
            assert faults == [(FAULT_HELD_BACK,)]
            oldest_held = conn.execute(
                "SELECT min(CAST(record->>'last_update' AS TIMESTAMP)) FROM ledger.quarantine"
            ).fetchall()[0][0]
            assert result.cursor_after is not None and result.cursor_after <= oldest_held

            # The account appears; the next incremental sync lands every held row.
            ctx = new_context(FAMILY, "conn-powens-primary", 1)
            sync_accounts(conn, client, ctx)
            later = sync_transactions(conn, client, new_context(FAMILY, "conn-powens-primary", 1))
            assert later.mode == "incremental"
            assert later.stats.quarantine_resolved == held
            assert (
                conn.execute(
                    "SELECT count(*) FROM ledger.quarantine WHERE resolved_at IS NULL"
                ).fetchall()[0][0]
                == 0
            )
        finally:
            conn.close()
            client.close()
        assert_ledger_matches_emulator(ledger, emulator)


def test_the_quarantine_check_warns_about_valid_rows_held_back(tmp_path, powens_env) -> None:
    with start_emulator(EmulatorConfig(seed=17, transactions=800, now=NOW)) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        ledger = tmp_path / "ledger"
        assert materialize_ledger(tenants, ledger, FAMILY).success
        conn = open_ledger(ledger)
        try:
            conn.execute(
                "INSERT INTO ledger.quarantine (id, load_id, stream, tenant_id, connection_id, "
                "external_id, reasons, record, quarantined_at, fault) VALUES ('q1', 'l', "
                "'transactions', ?, 'conn-powens-primary', '1', '[]', '{}', now(), ?)",
                [FAMILY, FAULT_HELD_BACK],
            )
        finally:
            conn.close()
        result = materialize_ledger(
            tenants, ledger, FAMILY, assets=("bank_transactions",), raise_on_error=False
        )
    check = {e.check_name: e for e in result.get_asset_check_evaluations()}[
        "quarantine_holds_only_malformed_records"
    ]
    assert not check.passed and check.severity.value == "WARN"
    assert check.metadata["held_back_open"].value == 1
    assert "1 valid rows held back" in (check.description or "")

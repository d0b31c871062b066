"""The ledger's loading rules, proven by materialising the real Dagster assets against the
emulator over a socket (docs/spec.md §5)."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import httpx
import orjson
import pytest

from pfo_pipeline import lake
from pfo_pipeline.operations import transactions_sync
from powens_emulator import EmulatorConfig, FaultConfig, start_emulator
from tests.conftest import (
    FAMILY,
    SECOND,
    demo_credentials,
    ledger_digests,
    materialize_ledger,
    open_ledger,
    query,
    resources_for,
    run_log_text,
    write_tenants_file,
)
from tests.ledger_expectations import (
    KILLED_SYNC,
    assert_ledger_matches_emulator,
    ledger_transactions,
    served_transactions,
)

FAMILY_EMULATOR = EmulatorConfig(seed=11, transactions=2500)


@pytest.fixture
def family(tmp_path: Path, powens_env: None):
    """A private emulator, for a test that moves its clock."""
    with start_emulator(FAMILY_EMULATOR) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        yield emulator, tenants, tmp_path / "ledger"


@dataclass(frozen=True)
class SyncedFamily:
    """The family synced once for the module, on an emulator no test moves: the first sync's
    result, and the clean ledger that fault, kill and re-run tests compare theirs with."""

    emulator: object
    tenants: Path
    ledger: Path
    first_sync: dg.ExecuteInProcessResult
    clean_content: dict[str, str]


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncedFamily]:
    tmp = tmp_path_factory.mktemp("synced")
    with demo_credentials(), start_emulator(FAMILY_EMULATOR) as emulator:
        tenants = write_tenants_file(tmp / "tenants.yaml", emulator.base_url)
        ledger = tmp / "ledger"
        result = materialize_ledger(tenants, ledger, FAMILY)
        assert result.success
        content = ledger_digests(ledger, business_only=True)
        yield SyncedFamily(emulator, tenants, ledger, result, content)


def test_first_sync_lands_every_row_and_rerun_changes_nothing(synced: SyncedFamily) -> None:
    emulator, tenants, ledger, result = (
        synced.emulator, synced.tenants, synced.ledger, synced.first_sync,
    )  # fmt: skip
    assert_ledger_matches_emulator(ledger, emulator)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert len(checks) == 13
    # One balance snapshot so far: the reconciliation compared nothing, passes and says so (a
    # correct first sync shows no red check).
    nothing = checks["balances_reconcile_with_transactions"]
    assert nothing.metadata["snapshot_pairs_checked"].value == 0
    assert nothing.description.startswith("Nothing to compare yet")
    assert all(c.passed for c in checks.values()), checks
    # Checks on the rows a sync just wrote report from the sync's own step.
    steps = {
        e.asset_check_evaluation_data.check_name: e.step_key
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    for table in ("bank_accounts", "bank_transactions", "account_balances"):
        assert steps[f"{table}_schema"] == steps[f"{table}_unique_ids"] == table
    assert steps["transactions_listing"] != "bank_transactions"
    materialization = result.asset_materializations_for_node("bank_transactions")[0]
    assert materialization.metadata["mode"].value == "full"
    assert materialization.metadata["rows_in"].value == len(served_transactions(emulator))

    before = ledger_digests(ledger)
    rerun = materialize_ledger(tenants, ledger, FAMILY)
    assert rerun.success
    assert ledger_digests(ledger) == before  # byte-for-byte, our own timestamps included
    again = rerun.asset_materializations_for_node("bank_transactions")[0].metadata
    assert again["mode"].value == "incremental" and again["upserted"].value == 0
    # The blocking contract check of a transactions sync reads the rows that load wrote: all of
    # them on the first sync, none on a re-run that changed nothing (run alone: every row).
    first = checks["bank_transactions_schema"].metadata
    assert first["rows_of"].value == "this load"
    assert first["rows"].value == len(served_transactions(emulator))
    rechecked = {e.check_name: e for e in rerun.get_asset_check_evaluations()}
    assert rechecked["bank_transactions_schema"].metadata["rows"].value == 0
    assert rechecked["bank_accounts_schema"].metadata["rows_of"].value == "the whole table"


def test_a_syncs_check_re_runs_alone_without_syncing(synced: SyncedFamily, powens_env) -> None:
    """Selecting only a sync's own check (as the UI's "Execute" on a check does) re-checks the
    table and loads nothing."""
    ledger = synced.ledger
    loads = query(ledger, "SELECT count(*) FROM ledger.loads")
    from pfo_pipeline.definitions import materializable

    sync = [a for a in materializable() if dg.AssetKey("bank_transactions") in a.keys]
    result = dg.materialize(
        sync,
        selection=dg.AssetSelection.checks(
            dg.AssetCheckKey(dg.AssetKey("bank_transactions"), "bank_transactions_schema")
        ),
        resources=resources_for(ledger),
    )
    assert result.success
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == "bank_transactions_schema" and evaluation.passed
    assert evaluation.metadata["rows_of"].value == "the whole table"
    rows = query(ledger, "SELECT count(*) FROM ledger.bank_transactions")[0][0]
    assert evaluation.metadata["rows"].value == rows
    assert result.get_asset_materialization_events() == []
    assert query(ledger, "SELECT count(*) FROM ledger.loads") == loads


def test_the_contract_check_finds_a_broken_row_in_the_lake(
    synced: SyncedFamily, tmp_path: Path
) -> None:
    """The contract runs in DuckDB on stored rows: a row broken after its load (here by hand, in a
    copy of the ledger) fails the blocking check, which names the rule and counts the row."""
    import shutil

    from pfo_pipeline.defs.ledger.step_checks import step_check_results

    ledger = tmp_path / "ledger"
    shutil.copytree(synced.ledger, ledger)
    conn = open_ledger(ledger, relocated=True)
    try:
        assert all(r.passed for r in step_check_results(conn, "bank_transactions"))
        conn.execute(
            "UPDATE ledger.bank_transactions SET direction = 'credit' WHERE id = "
            "(SELECT min(id) FROM ledger.bank_transactions WHERE amount < 0)"
        )
        schema, unique_ids = step_check_results(conn, "bank_transactions")
    finally:
        conn.close()
    assert not schema.passed and unique_ids.passed
    assert schema.metadata["failing_rows"].value == 1
    assert schema.metadata["failed_checks"].value == ["record: failed direction_matches_sign"]


def test_after_the_clock_moves_the_ledger_follows_every_rule(family) -> None:
    emulator, tenants, ledger = family
    assert materialize_ledger(tenants, ledger, FAMILY).success
    before = ledger_transactions(ledger)
    pending_before = {pid for pid, row in before.items() if row[0] == "pending"}
    accounts_before = query(ledger, "SELECT id, external_id FROM ledger.bank_accounts")

    changes = emulator.advance(days=3)
    assert changes["booked_in_place"] and changes["reissued"] and changes["edited"]
    assert changes["renumbered"]
    result = materialize_ledger(tenants, ledger, FAMILY)
    assert result.success
    assert_ledger_matches_emulator(ledger, emulator)
    reconciled = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert reconciled["balances_reconcile_with_transactions"].passed
    assert (
        reconciled["balances_reconcile_with_transactions"].metadata["snapshot_pairs_checked"].value
        > 0
    )
    after = ledger_transactions(ledger)
    served = served_transactions(emulator)

    # pending -> booked in place: same canonical row, now booked
    booked_in_place = [
        p for p in pending_before if served[p]["deleted"] is None and not served[p]["coming"]
    ]
    assert booked_in_place
    for powens_id in booked_in_place:
        assert after[powens_id][0] == "booked" and after[powens_id][2] == before[powens_id][2]

    # deleted pending rows are tombstones, each linked from exactly one re-issued booked twin
    tombstoned = [p for p in pending_before if served[p]["deleted"] is not None]
    assert tombstoned
    twins = {row[4]: pid for pid, row in after.items() if row[4] is not None}
    for powens_id in tombstoned:
        assert after[powens_id][0] == "cancelled"
        twin_powens_id = twins[after[powens_id][2]]
        twin = served[twin_powens_id]
        assert twin_powens_id > powens_id and twin["value"] == served[powens_id]["value"]

    # the renumbered account kept one canonical id and its whole history
    old_id, new_id = changes["renumbered"]
    rows = query(
        ledger,
        "SELECT id, external_id, status FROM ledger.bank_accounts WHERE id IN "
        "(SELECT account_id FROM ledger.account_aliases WHERE external_id IN (?, ?))",
        [str(old_id), str(new_id)],
    )
    assert len(rows) == 1 and rows[0][1] == str(new_id) and rows[0][2] == "active"
    assert rows[0][0] in {a for a, _ in accounts_before}
    history = query(
        ledger,
        "SELECT count(*) FILTER (WHERE metadata->>'powens_account_id' = ?), "
        "count(*) FILTER (WHERE metadata->>'powens_account_id' = ?) "
        "FROM ledger.bank_transactions WHERE account_id = ?",
        [str(old_id), str(new_id), rows[0][0]],
    )[0]
    assert history[0] > 0 and history[1] > 0

    # edits applied
    edited = [p for p in before if p in served and after[p][5] != before[p][5]]
    assert edited

    # the marts reconstruct balances across both snapshots; dbt's reconciliation test agrees
    from pfo_pipeline.definitions import materializable

    marts = dg.materialize(
        materializable(),
        selection=dg.AssetSelection.groups("analytics"),
        resources=resources_for(ledger),
    )
    dbt_checks = {e.check_name: e.passed for e in marts.get_asset_check_evaluations()}
    assert dbt_checks["assert_balances_reconcile"] and all(dbt_checks.values()), dbt_checks
    snapshot_days = query(
        ledger,
        "SELECT count(*) FILTER (WHERE is_snapshot), count(DISTINCT anchor_date) "
        "FROM analytics.fct_daily_balances b JOIN analytics.dim_accounts a USING (account_id) "
        "WHERE a.account_alias = 'checking 1'",
    )[0]
    assert snapshot_days == (2, 2)

    # the cursor moved forward, with the load that covered it: to the newest change read, but at
    # least a second before Powens' clock at the first page (`last_update=` is strictly after, so
    # a change stamped in that same second after the page was read is read next time)
    cursor = query(ledger, "SELECT high_watermark FROM ledger.sync_cursors")[0][0]
    newest = datetime.strptime(max(t["last_update"] for t in served.values()), "%Y-%m-%d %H:%M:%S")
    assert cursor == min(newest, emulator.state.now - timedelta(seconds=1))


def test_faults_at_ten_percent_end_in_the_same_ledger_as_a_clean_run(
    synced: SyncedFamily, tmp_path, powens_env
) -> None:
    emulator, tenants = synced.emulator, synced.tenants
    faulty = tmp_path / "faulty"
    emulator.set_faults(
        FaultConfig(
            rate_429=0.1,
            retry_after_s=0.01,
            rate_503=0.1,
            rate_slow=0.1,
            slow_s=1.0,
            rate_token_expiry=0.1,
            seed=99,
        )
    )
    try:
        result = materialize_ledger(tenants, faulty, FAMILY, timeout_s=0.5, max_attempts=12)
    finally:
        emulator.set_faults(FaultConfig())
    assert result.success
    retries = result.asset_materializations_for_node("bank_transactions")[0].metadata
    assert retries["powens_retries"].value > 0
    assert ledger_digests(faulty, business_only=True) == synced.clean_content


@pytest.mark.parametrize(
    "where, signal_line", [("between-batches", "BATCH 2"), ("inside-commit", "IN COMMIT")]
)
def test_a_killed_load_leaves_nothing_half_done_and_reruns_to_the_same_ledger(
    synced: SyncedFamily, tmp_path, powens_env, where, signal_line
) -> None:
    tenants = synced.tenants
    killed = tmp_path / "killed"
    assert materialize_ledger(tenants, killed, FAMILY, assets=("bank_accounts",)).success
    script = tmp_path / "killed_sync.py"
    script.write_text(KILLED_SYNC)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tenants), str(killed), where],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    for line in proc.stdout:
        if line.startswith(signal_line):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert query(killed, "SELECT count(*) FROM ledger.bank_transactions")[0][0] == 0
    assert query(killed, "SELECT count(*) FROM ledger.sync_cursors")[0][0] == 0
    # No snapshot of the lake holds a row of the killed load: nothing partial was ever visible.
    snapshots = [s for (s,) in query(killed, "SELECT snapshot_id FROM lake.snapshots()")]
    for snapshot in snapshots:
        conn = lake.connect(lake.LakeLocation.in_folder(killed), snapshot_version=snapshot)
        try:
            rows = conn.execute("SELECT count(*) FROM ledger.bank_transactions").fetchall()
        except duckdb.CatalogException:
            rows = [(0,)]  # a snapshot from before the ledger's tables existed
        finally:
            conn.close()
        assert rows[0][0] == 0, snapshot

    assert materialize_ledger(tenants, killed, FAMILY).success
    assert ledger_digests(killed, business_only=True) == synced.clean_content
    statuses = dict(query(killed, "SELECT status, count(*) FROM ledger.loads GROUP BY 1"))
    assert statuses.get("abandoned") == 1


def test_malformed_records_are_quarantined_with_reasons_and_nothing_else_is_lost(
    tmp_path, powens_env
) -> None:
    config = EmulatorConfig(seed=5, transactions=2000, faults=FaultConfig(rate_malformed=0.02))
    with start_emulator(config) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        ledger = tmp_path / "ledger"
        result = materialize_ledger(tenants, ledger, FAMILY)
        assert result.success
        token = emulator.token_for(1)
        served, url, params = (
            [],
            f"{emulator.base_url}/users/me/transactions",
            {"limit": 1000, "all": ""},
        )
        while url:
            body = httpx.get(
                url, params=params, headers={"Authorization": f"Bearer {token}"}
            ).json()
            served += body["transactions"]
            url, params = (body["_links"]["next"] or {}).get("href"), None
    quarantined = query(
        ledger, "SELECT external_id, reasons FROM ledger.quarantine WHERE stream = 'transactions'"
    )
    stored = query(ledger, "SELECT count(*) FROM ledger.bank_transactions")[0][0]
    assert quarantined, "the emulator served malformed rows"
    assert stored + len(quarantined) == len(served)  # every row is in the ledger or quarantine
    reasons = " ".join(r for _, r in quarantined)
    for expected in (
        "id: missing",
        "value: expected a number",
        "date: not a valid date",
        "original_currency",
    ):
        assert expected in reasons
    metadata = result.asset_materializations_for_node("bank_transactions")[0].metadata
    assert metadata["quarantined"].value == len(quarantined)


def test_a_blocked_tenant_is_skipped_while_another_syncs(tmp_path, powens_env) -> None:
    config = EmulatorConfig(
        seed=3, transactions=800, faults=FaultConfig(connection_states={1: "SCARequired"})
    )
    with start_emulator(config) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        ledger = tmp_path / "ledger"
        instance = dg.DagsterInstance.ephemeral()
        blocked = materialize_ledger(tenants, ledger, FAMILY, instance=instance)
        healthy = materialize_ledger(tenants, ledger, SECOND, instance=instance)
        log = run_log_text(instance, blocked)
    assert blocked.success and healthy.success
    assert not blocked.asset_materializations_for_node("bank_transactions")
    health = blocked.asset_materializations_for_node("powens_connection_health")[0].metadata
    assert health["health"].value == "blocked" and "SCARequired" in health["reason"].value
    assert "tenant.family-office skipped (blocked, needs the user)" in log and "SCARequired" in log
    assert healthy.asset_materializations_for_node("bank_transactions")
    per_tenant = dict(
        query(ledger, "SELECT tenant_id, count(*) FROM ledger.bank_transactions GROUP BY 1")
    )
    assert FAMILY not in per_tenant and per_tenant[SECOND] > 0
    events = query(
        ledger,
        "SELECT name, tenant_id FROM telemetry.events WHERE name = 'openbanking.guardrail.blocked'",
    )
    assert events and all(tenant == FAMILY for _, tenant in events)


def test_telemetry_on_success_and_on_every_failed_attempt(
    tmp_path, powens_env, monkeypatch
) -> None:
    """Success events carry the common metadata; a sync that keeps failing reports each attempt,
    the one that exhausted the retries included, and the run fails."""
    from pfo_pipeline.powens import auth

    monkeypatch.setattr(auth, "RENEW_PAUSE_S", 0.0)  # every renewal fails here: no need to wait
    with start_emulator(EmulatorConfig(seed=8, transactions=600)) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        ledger = tmp_path / "ledger"
        assert materialize_ledger(tenants, ledger, FAMILY).success
        emulator.set_faults(FaultConfig(rate_503=1.0))
        failed = materialize_ledger(
            tenants, ledger, FAMILY, assets=("bank_accounts",), raise_on_error=False, max_attempts=1
        )
    assert not failed.success
    rows = query(
        ledger,
        "SELECT name, tenant_id, app_id, blueprint, config_version, slot_id, connection_id, properties "
        "FROM telemetry.events ORDER BY occurred_at",
    )
    names = [r[0] for r in rows]
    for name in (
        "openbanking.accounts.synced",
        "openbanking.transactions.synced",
        "openbanking.balances.refreshed",
    ):
        assert name in names
    assert all(r[1:7] == (FAMILY, "pocket-family-office", "pocket-family-office.app@1.0.0", 1,
                          "primaryOpenBanking", "conn-powens-primary") for r in rows)  # fmt: skip
    failures = [orjson.loads(r[7]) for r in rows if r[0] == "openbanking.accounts.sync_failed"]
    assert [f["attempt"] for f in failures] == [1, 2, 3, 4]
    assert [f["retries_exhausted"] for f in failures] == [False, False, False, True]
    assert all(f["error_kind"] == "unavailable" and "status=503" in f["error"] for f in failures)


def test_a_permanent_error_fails_at_once_with_its_real_message(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No credentials in the environment: retrying cannot help, so the step fails on its first
    attempt and the failure names the variable to set (not `Exceeded max_retries`)."""
    monkeypatch.delenv("PFO_TEST_POWENS_CLIENT_ID", raising=False)
    monkeypatch.setenv("PFO_TEST_POWENS_CLIENT_SECRET", "pfo-demo-secret")
    with start_emulator(EmulatorConfig(seed=9, transactions=300)) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        instance = dg.DagsterInstance.ephemeral()
        started = time.monotonic()
        result = materialize_ledger(
            tenants, tmp_path / "ledger", FAMILY, assets=("bank_accounts",),
            raise_on_error=False, instance=instance,
        )  # fmt: skip
        elapsed = time.monotonic() - started
    assert not result.success
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert len(failures) == 1
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert retries == []  # the 3 retries of docs/spec.md §6 are for transient errors only
    message = failures[0].step_failure_data.error.message
    assert "PFO_TEST_POWENS_CLIENT_ID" in message and "not retried" in message
    assert elapsed < 30


def test_a_sync_reports_its_progress_in_the_run_log(tmp_path, powens_env, monkeypatch) -> None:
    """A long first sync must not look frozen: the run log says what stage it is in, pages and
    rows so far and the rate, at INFO: for the first batch, then each time the rows pass a
    multiple of `PROGRESS_EVERY_ROWS` (50,000; here 300, then the default), not every batch."""
    config = {"ops": {"bank_transactions": {"config": {"page_size": 100, "batch_rows": 150}}}}

    def progress_lines(ledger: Path) -> list[str]:
        instance = dg.DagsterInstance.ephemeral()
        result = materialize_ledger(tenants, ledger, FAMILY, instance=instance, run_config=config)
        assert result.success
        return [
            e.user_message
            for e in instance.all_logs(result.run_id)
            if e.level == logging.INFO and e.user_message.startswith("transactions sync")
        ]

    with start_emulator(EmulatorConfig(seed=10, transactions=900)) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        default = transactions_sync.PROGRESS_EVERY_ROWS
        monkeypatch.setattr(transactions_sync, "PROGRESS_EVERY_ROWS", 300)
        lines = progress_lines(tmp_path / "ledger")
        monkeypatch.setattr(transactions_sync, "PROGRESS_EVERY_ROWS", default)
        by_default = progress_lines(tmp_path / "ledger-default")
    fetched = [line for line in lines if "fetched and validated" in line]
    assert len(fetched) >= 3 and "rows/s" in fetched[-1] and "pages" in fetched[-1]
    # The first batch's line, then one line each time a multiple of 300 rows is passed.
    rows = [int(re.search(r"pages, ([\d,]+) rows", line)[1].replace(",", "")) for line in fetched]
    assert [n // 300 for n in rows[1:]] == sorted(set(n // 300 for n in rows[1:]))
    assert rows[0] <= 150 * 2 and all(n // 300 > rows[0] // 300 for n in rows[1:])
    assert any("committing" in line for line in lines) and "committed" in lines[-1]
    assert len([line for line in by_default if "fetched and validated" in line]) == 1


def test_ledger_asset_metadata_shows_stored_types_and_both_row_counts(tmp_path, powens_env) -> None:
    with start_emulator(EmulatorConfig(seed=6, transactions=400)) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        ledger = tmp_path / "ledger"
        assert materialize_ledger(tenants, ledger, FAMILY).success
        second = materialize_ledger(
            tenants, ledger, SECOND, assets=("bank_accounts", "bank_transactions")
        )
    metadata = second.asset_materializations_for_node("bank_transactions")[0].metadata
    family_rows = query(
        ledger, "SELECT count(*) FROM ledger.bank_transactions WHERE tenant_id = ?", [FAMILY]
    )[0][0]
    assert metadata["table_rows"].value == metadata["partition_rows"].value + family_rows
    assert metadata["dagster/row_count"].value == metadata["partition_rows"].value
    from pfo_pipeline.definitions import load_definitions

    spec = (
        load_definitions()
        .resolve_assets_def("bank_transactions")
        .specs_by_key[dg.AssetKey("bank_transactions")]
    )
    types = {c.name: c.type for c in spec.metadata["dagster/column_schema"].columns}
    assert types["amount"] == "DECIMAL(18,2)" and types["description"] == "VARCHAR"
    assert types["date"] == "DATE" and not any("pyarrow" in t for t in types.values())
    for asset in ("bank_accounts", "bank_transactions", "account_balances"):
        schema = (
            load_definitions()
            .resolve_assets_def(asset)
            .specs_by_key[dg.AssetKey(asset)]
            .metadata["dagster/column_schema"]
        )
        undocumented = [c.name for c in schema.columns if not (c.description or "").strip()]
        assert undocumented == [], f"{asset}: columns without a description {undocumented}"

"""The whole sync, materialised as Dagster assets, against each documented Powens behaviour the
emulator can take on (docs/powens-api.md §13): a user with no account yet, the legacy connection
`error` field and drifted codes, lists without `_links` (and without `total`), a month's window
when `min_date` is missing, nullable fields sent as null, S3's or the drifted transaction type
names, offset-carrying timestamps, and a run config's date window."""

from __future__ import annotations

from datetime import datetime

import dagster as dg
import pytest

from pfo_pipeline.ledger.health import NO_ACCOUNTS_YET
from pfo_pipeline.ledger.types import FAULT_HELD_BACK
from powens_emulator import EmulatorConfig, FaultConfig, start_emulator
from tests.conftest import (
    FAMILY,
    materialize_ledger,
    query,
    write_tenants_file,
)
from tests.ledger_expectations import (
    CONTENT,
    RECORDS_COMPARED,
    assert_ledger_matches_emulator,
    served_transactions,
)

NOW = datetime(2026, 5, 29, 8, 0, 0)
SMALL = {"transactions": 700, "history_days": 400, "now": NOW}


def sync_config(**config: object) -> dict:
    return {"ops": {"bank_transactions": {"config": config}}}


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    materialisations = result.asset_materializations_for_node(asset)
    assert materialisations, f"{asset} was not materialised"
    return {k: v.value for k, v in materialisations[0].metadata.items()}


def no_retries(result: dg.ExecuteInProcessResult) -> bool:
    kinds = {e.event_type_value for e in result.all_events}
    return not kinds & {"STEP_UP_FOR_RETRY", "STEP_RESTARTED", "STEP_FAILURE"}


def test_a_user_without_accounts_syncs_nothing_and_health_says_why(tmp_path, powens_env) -> None:
    """S3: 400 `noAccount` on the lists of a user with no account yet: every sync succeeds at once
    with nothing to load; nothing is quarantined or retried (facts §10). (S8's 409 form:
    tests/powens/test_listing_shapes.py.)"""
    faults = FaultConfig(no_accounts={1: 400})
    with start_emulator(EmulatorConfig(seed=41, faults=faults, **SMALL)) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        ledger = tmp_path / "ledger"
        result = materialize_ledger(tenants, ledger, FAMILY)
        assert result.success and no_retries(result)
        health = metadata(result, "powens_connection_health")
        assert health["health"] == "healthy" and health["no_accounts_yet"]
        assert metadata(result, "bank_transactions")["rows_in"] == 0
        assert metadata(result, "bank_accounts")["rows_in"] == 0
        assert metadata(result, "account_balances")["powens_retries"] == 0
        stored = query(ledger, "SELECT status, state, reason FROM ledger.connection_health")
        assert stored == [("healthy", None, f"Powens connection 11 is healthy. {NO_ACCOUNTS_YET}")]
        counts = query(
            ledger,
            "SELECT (SELECT count(*) FROM ledger.quarantine), "
            "(SELECT count(*) FROM ledger.bank_transactions), "
            "(SELECT count(*) FROM ledger.loads WHERE status <> 'succeeded')",
        )
        assert counts == [(0, 0, 0)]

        emulator.set_faults(FaultConfig())  # the bank's accounts are found
        later = materialize_ledger(tenants, ledger, FAMILY)
        assert later.success and not metadata(later, "powens_connection_health")["no_accounts_yet"]
        assert_ledger_matches_emulator(ledger, emulator)


@pytest.mark.parametrize(
    "states, health, recorded",
    [
        ({1: "wrongPass"}, "blocked", "wrongPass"),  # S4's spelling of S3's `wrongpass`
        ({1: "websiteunavailable"}, "degraded", "websiteunavailable"),
        ({1: "accountLocked"}, "blocked", "accountLocked"),  # a code no source documents
    ],
)
def test_the_legacy_error_field_and_drifted_codes_stop_the_sync(
    tmp_path, powens_env, states, health, recorded
) -> None:
    """Legacy payloads carry `error`, not `state` (S1); codes drift in case (facts §9)."""
    faults = FaultConfig(legacy_connection_error=True, connection_states=states)
    with start_emulator(EmulatorConfig(seed=42, faults=faults, **SMALL)) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        ledger = tmp_path / "ledger"
        assets = ("powens_connection_health", "bank_transactions")
        result = materialize_ledger(tenants, ledger, FAMILY, assets=assets)
    assert result.success
    assert not result.asset_materializations_for_node("bank_transactions")
    stored = query(ledger, "SELECT status, state, reason FROM ledger.connection_health")
    assert stored[0][:2] == (health, recorded) and recorded in stored[0][2]
    assert query(ledger, "SELECT count(*) FROM ledger.bank_transactions") == [(0,)]


def test_a_legacy_connection_with_no_error_syncs_everything(tmp_path, powens_env) -> None:
    faults = FaultConfig(legacy_connection_error=True)
    with start_emulator(EmulatorConfig(seed=43, faults=faults, **SMALL)) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        ledger = tmp_path / "ledger"
        assets = ("powens_connection_health", *RECORDS_COMPARED)
        result = materialize_ledger(tenants, ledger, FAMILY, assets=assets)
        assert result.success and metadata(result, "powens_connection_health")["health"] == (
            "healthy"
        )
        assert_ledger_matches_emulator(ledger, emulator)


@pytest.mark.parametrize(
    "faults, concurrency",
    [
        (FaultConfig(lists_without_links=True), 4),
        (FaultConfig(lists_without_links=True, lists_without_total=True), 1),
    ],
    ids=["no-links-date-windows", "no-links-no-total-one-chain"],
)
def test_lists_without_links_page_by_offset_through_the_whole_sync(
    tmp_path, powens_env, faults, concurrency: int
) -> None:
    """S3 documents `offset`/`limit` paging and no `_links` (facts §7): a full then an incremental
    sync, over one chain or date windows, end equal to what Powens serves, and to the same syncs
    of the same data served with `_links`."""
    config = sync_config(page_size=50, fetch_concurrency=concurrency)
    with start_emulator(EmulatorConfig(seed=44, **SMALL)) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        linked, offset = tmp_path / "linked", tmp_path / "offset"
        synced = {"assets": RECORDS_COMPARED, "run_config": config}
        assert materialize_ledger(tenants, linked, FAMILY, **synced).success
        emulator.set_faults(faults)
        assert materialize_ledger(tenants, offset, FAMILY, **synced).success
        assert_ledger_matches_emulator(offset, emulator)
        emulator.advance(5)
        for ledger, shape in ((linked, FaultConfig()), (offset, faults)):
            emulator.set_faults(shape)
            result = materialize_ledger(tenants, ledger, FAMILY, **synced)
            assert result.success and metadata(result, "bank_transactions")["mode"] == "incremental"
        assert_ledger_matches_emulator(offset, emulator)
        assert query(offset, CONTENT) == query(linked, CONTENT)


def test_a_month_default_window_loses_nothing_as_every_listing_states_its_own(
    tmp_path, powens_env
) -> None:
    """S2: a transactions list without `min_date` selects the last month only (facts §5)."""
    faults = FaultConfig(month_window_without_min_date=True)
    with start_emulator(EmulatorConfig(seed=45, faults=faults, **SMALL)) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        ledger = tmp_path / "ledger"
        assert materialize_ledger(tenants, ledger, FAMILY, assets=RECORDS_COMPARED).success
        assert_ledger_matches_emulator(ledger, emulator)
        emulator.advance(3)
        result = materialize_ledger(tenants, ledger, FAMILY, assets=RECORDS_COMPARED)
        assert result.success and metadata(result, "bank_transactions")["mode"] == "incremental"
        assert_ledger_matches_emulator(ledger, emulator)
    days = query(ledger, "SELECT max(date) - min(date) FROM ledger.bank_transactions")[0][0]
    assert days > 300


def test_nullable_fields_land_and_a_null_value_is_read_again(tmp_path, powens_env) -> None:
    """Every field S3 marks nullable may come as null: what the records can hold lands (an
    account with no currency as `XXX`, its transactions too); a row with no `value` is held back
    with that reason and read again by the next sync, which lands it once Powens fills it."""
    faults = FaultConfig(rate_null_fields=0.3, rate_null_value=0.03, seed=5)
    with start_emulator(EmulatorConfig(seed=46, faults=faults, **SMALL)) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        ledger = tmp_path / "ledger"
        served = served_transactions(emulator)
        no_value = {i for i, t in served.items() if t["value"] is None}
        nulls = {i for i, t in served.items() if t["value"] is not None and t["wording"] is None}
        assert no_value and nulls
        result = materialize_ledger(tenants, ledger, FAMILY)
        assert result.success and no_retries(result)
        stored = {
            int(i) for (i,) in query(ledger, "SELECT external_id FROM ledger.bank_transactions")
        }
        assert stored == set(served) - no_value  # every row that can land did
        held = query(
            ledger,
            "SELECT external_id, fault, reasons FROM ledger.quarantine "
            "WHERE resolved_at IS NULL AND stream = 'transactions'",
        )
        assert {int(i) for i, *_ in held} == no_value
        assert all(f == FAULT_HELD_BACK and "value: null" in r for _, f, r in held)
        cursor = query(ledger, "SELECT high_watermark FROM ledger.sync_cursors")
        stamps = [served[i]["last_update"] for i in no_value]
        if None in stamps:  # a held row with no `last_update`: the next sync reads everything
            assert cursor == []
        else:  # the cursor stays strictly before every held row
            assert cursor and cursor[0][0] < datetime.strptime(min(stamps), "%Y-%m-%d %H:%M:%S")
        no_currency = query(
            ledger,
            "SELECT a.external_id, count(t.id), count(*) FILTER (WHERE t.currency <> 'XXX') "
            "FROM ledger.bank_accounts a LEFT JOIN ledger.bank_transactions t "
            "ON t.account_id = a.id WHERE a.currency = 'XXX' GROUP BY 1",
        )
        assert no_currency and all(rows > 0 and other == 0 for _, rows, other in no_currency)

        emulator.set_faults(FaultConfig())  # Powens fills the values (and currencies) in
        later = materialize_ledger(tenants, ledger, FAMILY)
        assert later.success
        assert_ledger_matches_emulator(ledger, emulator)
        assert query(
            ledger,
            "SELECT (SELECT count(*) FROM ledger.quarantine WHERE resolved_at IS NULL), "
            "(SELECT count(*) FROM ledger.bank_transactions WHERE currency = 'XXX'), "
            "(SELECT count(*) FROM ledger.bank_accounts WHERE currency = 'XXX')",
        ) == [(0, 0, 0)]


def test_spec_and_drifted_type_names_land_and_categorise_alike(tmp_path, powens_env) -> None:
    """S3 says `loan_payment`, `bank`, `summary_card`; docs and integrators `loan_repayment`,
    `fee`, `card_summary` (facts §13): both load, and categorise the same way."""
    ledgers = {}
    with start_emulator(EmulatorConfig(seed=47, **SMALL)) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        for names in ("spec", "drifted"):
            emulator.set_faults(FaultConfig(transaction_types=names))
            ledgers[names] = tmp_path / names
            synced = materialize_ledger(tenants, ledgers[names], FAMILY, assets=RECORDS_COMPARED)
            assert synced.success
    sql = (
        "SELECT external_id, transaction_type, standardized_category FROM ledger.bank_transactions"
    )
    spec = {i: rest for i, *rest in query(ledgers["spec"], sql)}
    drifted = {i: rest for i, *rest in query(ledgers["drifted"], sql)}
    assert {c for _, c in spec.values()} == {c for _, c in drifted.values()}
    assert {i: c for i, (_, c) in spec.items()} == {i: c for i, (_, c) in drifted.items()}
    spec_types, drifted_types = {t for t, _ in spec.values()}, {t for t, _ in drifted.values()}
    assert {"loan_payment", "bank", "summary_card"} <= spec_types
    assert not {"loan_repayment", "fee", "card_summary"} & spec_types
    assert {"loan_repayment", "fee", "card_summary"} <= drifted_types
    loans = {c for t, c in spec.values() if t == "loan_payment"}
    assert loans == {"housing"}


def test_offset_timestamps_land_as_paris_wall_clock(tmp_path, powens_env) -> None:
    """Some connectors send timestamps with an offset (S6, facts §4): the ledger and the cursor
    are the same as with Powens' naive Paris times."""
    with start_emulator(EmulatorConfig(seed=48, **SMALL)) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        naive, offset = tmp_path / "naive", tmp_path / "offset"
        assert materialize_ledger(tenants, naive, FAMILY, assets=RECORDS_COMPARED).success
        emulator.set_faults(FaultConfig(offset_timestamps=True))
        assert materialize_ledger(tenants, offset, FAMILY, assets=RECORDS_COMPARED).success
    assert query(offset, CONTENT) == query(naive, CONTENT)
    cursors = "SELECT high_watermark FROM ledger.sync_cursors"
    assert query(offset, cursors) == query(naive, cursors) != []


def test_a_run_configs_date_window_re_reads_it_and_leaves_the_cursor(tmp_path, powens_env) -> None:
    """`min_date`/`max_date` take every CalendarBound form (facts §5): a month is its first to
    its last day. A window says nothing of changes outside it, so the cursor does not move; a
    bad bound fails the step at once, naming the key."""
    with start_emulator(EmulatorConfig(seed=49, **SMALL)) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        ledger = tmp_path / "ledger"
        assert materialize_ledger(tenants, ledger, FAMILY, assets=RECORDS_COMPARED).success
        cursor = query(ledger, "SELECT high_watermark FROM ledger.sync_cursors")
        emulator.advance(2)  # changes the window below does not cover
        result = materialize_ledger(
            tenants, ledger, FAMILY, assets=("bank_transactions",),
            run_config=sync_config(min_date="2026-02", max_date="2026-02"),
        )  # fmt: skip
        assert result.success
        meta = metadata(result, "bank_transactions")
        assert (meta["mode"], meta["window_start"], meta["window_end"]) == (
            "backfill", "2026-02-01", "2026-02-28",
        )  # fmt: skip
        dates = query(
            ledger,
            "SELECT min(date), max(date) FROM ledger.bank_transactions WHERE load_id = ?",
            [meta["load_id"]],
        )
        assert query(ledger, "SELECT high_watermark FROM ledger.sync_cursors") == cursor
        assert all(d is None or d.month == 2 for d in dates[0])
        bad = materialize_ledger(
            tenants, ledger, FAMILY, assets=("bank_transactions",), raise_on_error=False,
            run_config=sync_config(min_date="2026-13"),
        )  # fmt: skip
    assert not bad.success
    failures = [e for e in bad.all_events if e.event_type_value == "STEP_FAILURE"]
    assert len(failures) == 1 and not any(
        e.event_type_value == "STEP_UP_FOR_RETRY" for e in bad.all_events
    )
    message = failures[0].step_failure_data.error.message
    assert "min_date: '2026-13' is not a real date" in message and "not retried" in message

"""Telemetry events (docs/spec.md §9): common metadata, redacted properties, a JSON log line and a row in a
real lake, and an `emit` that never fails the run calling it."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from pfo_pipeline.telemetry import events
from pfo_pipeline.tenancy.config import load_tenants
from tests.conftest import open_ledger

IBAN = "FR7630004000031234567890143"
FAMILY = "tenant.family-office"


@pytest.fixture
def ctx() -> events.TelemetryContext:
    return events.TelemetryContext.for_tenant(load_tenants()[FAMILY])


def _log_lines(caplog: pytest.LogCaptureFixture) -> list[dict]:
    return [
        json.loads(record.getMessage())
        for record in caplog.records
        if record.name == events.LOGGER_NAME and record.levelno == logging.INFO
    ]


def test_event_names_are_the_original_designs() -> None:
    assert (
        {
            events.ACCOUNTS_SYNCED,
            events.ACCOUNTS_SYNC_FAILED,
            events.TRANSACTIONS_SYNCED,
            events.TRANSACTIONS_SYNC_FAILED,
            events.BALANCES_REFRESHED,
            events.BALANCES_REFRESH_FAILED,
            events.OVERVIEW_GENERATED,
            events.GUARDRAIL_BLOCKED,
            events.WEBHOOK_UNMAPPED,
        }
        == {
            "openbanking.accounts.synced",
            "openbanking.accounts.sync_failed",
            "openbanking.transactions.synced",
            "openbanking.transactions.sync_failed",
            "openbanking.balances.refreshed",
            "openbanking.balances.refresh_failed",
            "openbanking.overview.generated",
            "openbanking.guardrail.blocked",
            "openbanking.webhook.unmapped",
        }
        == events.EVENT_NAMES
    )


def test_context_carries_the_tenant_metadata(ctx: events.TelemetryContext) -> None:
    assert ctx == events.TelemetryContext(
        tenant_id=FAMILY,
        app_id="pocket-family-office",
        blueprint="pocket-family-office.app@1.0.0",
        config_version=1,
        slot_id="primaryOpenBanking",
        connection_id="conn-powens-primary",
    )
    unbound = load_tenants()[FAMILY].model_copy(update={"bindings": {}})
    assert events.TelemetryContext.for_tenant(unbound).connection_id == "unbound"


def test_build_event_has_metadata_utc_time_and_redacted_properties(
    ctx: events.TelemetryContext,
) -> None:
    properties = {"synced_count": 3, "iban": IBAN, "window": {"from": "2026-11-01"}}
    paris = timezone(timedelta(hours=1))
    event = events.build_event(
        events.ACCOUNTS_SYNCED,
        ctx,
        properties,
        occurred_at=datetime(2026, 11, 24, 10, tzinfo=paris),
    )
    assert len(event["event_id"]) == 32 and int(event["event_id"], 16) >= 0
    assert event["name"] == "openbanking.accounts.synced"
    assert event["occurred_at"] == "2026-11-24T09:00:00+00:00"
    assert event["tenant_id"] == FAMILY and event["config_version"] == 1
    assert (
        event["slot_id"] == "primaryOpenBanking" and event["connection_id"] == "conn-powens-primary"
    )
    assert event["properties"] == {
        "synced_count": 3,
        "iban": "*" * 23 + "0143",
        "window": {"from": "2026-11-01"},
    }
    assert properties["iban"] == IBAN  # the caller's mapping is untouched
    other = events.build_event(events.ACCOUNTS_SYNCED, ctx, {})
    assert other["event_id"] != event["event_id"]
    assert datetime.fromisoformat(other["occurred_at"]).tzinfo == UTC


def test_emit_writes_one_json_log_line_and_one_row_in_a_real_file(
    tmp_path: Path, ctx: events.TelemetryContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=events.LOGGER_NAME)
    database = tmp_path / "ledger"
    props = {"synced_count": 3, "from": "2026-10-01", "note": f"paid to {IBAN}", "api_key": "k-1"}
    event = events.build_event(events.TRANSACTIONS_SYNCED, ctx, props)
    conn = open_ledger(database)
    events.emit(event, conn=conn)
    events.emit(event, conn=conn)  # the same event again is not a second row
    conn.close()

    with open_ledger(database, read_only=True) as reader:
        rows = reader.execute(
            "SELECT event_id, name, occurred_at, tenant_id, app_id, blueprint, config_version, "
            "slot_id, connection_id, properties FROM telemetry.events"
        ).fetchall()
        types = dict(
            reader.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_catalog = 'lake' AND table_schema = 'telemetry' AND table_name = 'events'"
            ).fetchall()
        )
    assert len(rows) == 1
    row = rows[0]
    assert row[0] == event["event_id"] and row[1] == "openbanking.transactions.synced"
    assert row[2] == datetime.fromisoformat(event["occurred_at"])
    assert row[3:9] == (
        FAMILY,
        "pocket-family-office",
        "pocket-family-office.app@1.0.0",
        1,
        "primaryOpenBanking",
        "conn-powens-primary",
    )
    stored = json.loads(row[9])
    assert stored["synced_count"] == 3 and stored["from"] == "2026-10-01"
    assert stored["note"] == "paid to " + "*" * 23 + "0143" and stored["api_key"] == "[REDACTED]"
    assert (
        types["occurred_at"] == "TIMESTAMP WITH TIME ZONE" and types["config_version"] == "INTEGER"
    )
    assert types["properties"] == "JSON"

    lines = _log_lines(caplog)
    assert len(lines) == 2 and lines[0]["event_id"] == event["event_id"]
    assert lines[0]["properties"]["note"].endswith("0143")
    assert IBAN not in caplog.text and "k-1" not in caplog.text


def test_emit_redacts_a_hand_built_event_again(
    tmp_path: Path, ctx: events.TelemetryContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=events.LOGGER_NAME)
    event = events.build_event(events.WEBHOOK_UNMAPPED, ctx, {})
    event["properties"] = {"counterpartyName": "Jean Dupont", "access_token": "tok-secret-1"}
    with open_ledger(tmp_path / "ledger") as conn:
        events.emit(event, conn=conn)
        (stored,) = conn.execute("SELECT properties FROM telemetry.events").fetchall()[0]
    assert json.loads(stored) == {"counterpartyName": "*******pont", "access_token": "[REDACTED]"}
    assert "Jean Dupont" not in caplog.text and "tok-secret-1" not in caplog.text


def test_emit_without_a_connection_only_logs_to_the_given_logger(
    ctx: events.TelemetryContext, caplog: pytest.LogCaptureFixture
) -> None:
    own = logging.getLogger("pfo_pipeline.tests.own_telemetry")
    caplog.set_level(logging.INFO, logger=own.name)
    events.emit(
        events.build_event(events.OVERVIEW_GENERATED, ctx, {"period": "month"}),
        conn=None,
        logger=own,
    )
    (record,) = [r for r in caplog.records if r.name == own.name]
    assert json.loads(record.getMessage())["properties"] == {"period": "month"}


def test_emit_never_raises_on_a_closed_connection(
    tmp_path: Path, ctx: events.TelemetryContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=events.LOGGER_NAME)
    conn = open_ledger(tmp_path / "ledger")
    conn.close()
    event = events.build_event(events.ACCOUNTS_SYNC_FAILED, ctx, {"error": f"bad {IBAN}"})
    events.emit(event, conn=conn)  # must not raise
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "openbanking.accounts.sync_failed not stored" in message
    assert "bad" not in message and "0143" not in message  # no payload in the warning
    assert IBAN not in caplog.text


@pytest.mark.parametrize(
    "event",
    [
        {"name": "openbanking.accounts.synced"},  # missing metadata
        {
            "name": "x",
            "event_id": 1,
            "occurred_at": "not a time",
            "tenant_id": "t",
            "app_id": "a",
            "blueprint": "b",
            "config_version": "one",
            "slot_id": "s",
            "connection_id": "c",
            "properties": {},
        },
        "not even a mapping",
    ],
)
def test_emit_never_raises_on_a_malformed_event(
    tmp_path: Path, event: object, caplog: pytest.LogCaptureFixture
) -> None:
    with open_ledger(tmp_path / "ledger") as conn:
        events.emit(event, conn=conn)  # type: ignore[arg-type]
    assert "not stored" in caplog.text


def test_emit_survives_a_broken_log_handler(tmp_path: Path, ctx: events.TelemetryContext) -> None:
    class Exploding(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            raise RuntimeError("handler down")

        def handleError(self, record: logging.LogRecord) -> None:
            raise RuntimeError("handler down")

    broken = logging.getLogger("pfo_pipeline.tests.broken_telemetry")
    broken.propagate = False
    broken.addHandler(Exploding())
    broken.setLevel(logging.INFO)
    with open_ledger(tmp_path / "ledger") as conn:
        events.emit(events.build_event(events.ACCOUNTS_SYNCED, ctx, {}), conn=conn, logger=broken)
        assert conn.execute("SELECT count(*) FROM telemetry.events").fetchall() == [(1,)]

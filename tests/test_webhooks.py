"""Signed webhooks over real HTTP both ways: emulator -> receiver -> inbox -> sensor -> run -> ledger,
plus the receiver's refusals and the bank-connect flow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import httpx
import orjson
import pytest

from pfo_pipeline.definitions import defs
from pfo_pipeline.defs.sensors import WebhookSensorConfig, powens_webhook_sensor
from pfo_pipeline.emulator import EmulatorConfig, start_emulator
from pfo_pipeline.http_server import start_in_thread
from pfo_pipeline.tenancy.config import load_tenants
from pfo_pipeline.webhooks.inbox import Inbox
from pfo_pipeline.webhooks.receiver import create_receiver
from pfo_pipeline.webhooks.signature import sign, signature_date
from tests.conftest import FAMILY, materialize_ledger, query, resources_for, write_tenants_file

SECRET = "whsec-test-0123456789"
PATH = "/webhooks/powens/conn-powens-primary/CONNECTION_SYNCED"


@pytest.fixture
def receiver(tmp_path: Path, powens_env: None):
    tenants_file = write_tenants_file(tmp_path / "tenants.yaml", "http://127.0.0.1:9/2.0")
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    server = start_in_thread(create_receiver(inbox, load_tenants(tenants_file)))
    yield {"url": f"http://127.0.0.1:{server.port}", "inbox": inbox, "tenants": tenants_file}
    server.stop()
    inbox.close()


def post(receiver, body: bytes, *, secret: str = SECRET, date: str | None = None, path: str = PATH):
    date = date or signature_date()
    headers = {"BI-Signature-Date": date, "BI-Signature": sign(secret, "POST", path, date, body)}
    return httpx.post(receiver["url"] + path, content=body, headers=headers)


BODY = orjson.dumps(
    {"user": {"id": 1}, "connection": {"id": 11, "state": None, "accounts": [
        {"id": 101, "iban": "FR7630004000031234567890143", "transactions": [{"id": 1, "wording": "CB LIDL"}]}]}}
)  # fmt: skip


def test_a_signed_event_is_recorded_once_without_pii(receiver) -> None:
    first = post(receiver, BODY)
    again = post(receiver, BODY)  # Powens re-delivers the same body with a new date
    assert first.status_code == again.status_code == 200
    assert first.json()["duplicate"] is False and again.json()["duplicate"] is True
    events = receiver["inbox"].events_after(0)
    assert len(events) == 1 and events[0].tenant_id == FAMILY
    assert events[0].summary == {
        "user_id": 1,
        "powens_connection_id": 11,
        "account_ids": [101],
        "transactions": 1,
    }
    raw = (Path(receiver["inbox"].path)).read_bytes()
    assert b"FR7630004000031234567890143" not in raw and b"CB LIDL" not in raw


@pytest.mark.parametrize(
    "secret, offset_minutes",
    [("wrong-secret", 0), (SECRET, -10), (SECRET, +10)],
)
def test_bad_signature_or_replayed_date_is_refused_and_not_recorded(
    receiver, secret: str, offset_minutes: int
) -> None:
    """A wrong secret, a stale date (replay) and a future date are all 401, and nothing is kept."""
    sent = datetime.now(UTC) + timedelta(minutes=offset_minutes)  # computed when the test runs
    date = sent.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert post(receiver, BODY, secret=secret, date=date).status_code == 401
    assert receiver["inbox"].count() == 0


def test_malformed_json_is_a_400(receiver) -> None:
    assert post(receiver, b"{not json").status_code == 400
    assert receiver["inbox"].count() == 0


def test_unknown_connection_is_a_404(receiver) -> None:
    path = "/webhooks/powens/conn-unknown/CONNECTION_SYNCED"
    assert post(receiver, BODY, path=path).status_code == 404


def test_connect_callback_validates_state_and_queues_the_account_sync(receiver) -> None:
    state = receiver["inbox"].new_connect_state(FAMILY)
    bad = httpx.get(
        receiver["url"] + "/connect/callback", params={"state": "forged", "connection_id": "7"}
    )
    assert bad.status_code == 400
    ok = httpx.get(
        receiver["url"] + "/connect/callback", params={"state": state, "connection_id": "7"}
    )
    assert ok.status_code == 200 and ok.json()["tenant_id"] == FAMILY
    replay = httpx.get(
        receiver["url"] + "/connect/callback", params={"state": state, "connection_id": "7"}
    )
    assert replay.status_code == 400
    failed_state = receiver["inbox"].new_connect_state(FAMILY)
    error = httpx.get(
        receiver["url"] + "/connect/callback",
        params={
            "state": failed_state,
            "error": "access_denied",
            "error_description": "User cancelled",
        },
    )
    assert error.status_code == 400 and error.json()["error"] == "access_denied"
    kinds = [e.event_type for e in receiver["inbox"].events_after(0)]
    assert kinds == ["CONNECT_CALLBACK", "CONNECT_ERROR"]


def test_events_without_a_sync_become_telemetry_events_once(receiver, tmp_path: Path) -> None:
    """A connect error and an event type we do not sync on reach `telemetry.events` through a run
    in the ledger's writer pool; a synced event does not; re-running the step adds nothing."""
    deleted = "/webhooks/powens/conn-powens-primary/CONNECTION_DELETED"
    assert post(receiver, BODY, path=deleted).status_code == 200
    assert post(receiver, BODY).status_code == 200  # CONNECTION_SYNCED: a sync, not telemetry
    state = receiver["inbox"].new_connect_state(FAMILY)
    httpx.get(
        receiver["url"] + "/connect/callback",
        params={"state": state, "error": "access_denied", "error_description": "User cancelled"},
    )
    ledger = tmp_path / "pfo.duckdb"
    resources = {
        **resources_for(receiver["tenants"], ledger),
        "webhooks": WebhookSensorConfig(inbox_path=str(receiver["inbox"].path)),
    }
    instance = dg.DagsterInstance.ephemeral()
    result = powens_webhook_sensor(
        dg.build_sensor_context(instance=instance, resources=resources, definitions=defs)
    )
    by_job = {r.job_name: r for r in result.run_requests}
    assert sorted(by_job) == ["record_webhook_telemetry", "sync_openbanking_transactions"]
    job = defs.resolve_job_def("record_webhook_telemetry")
    for _ in range(2):
        run = job.execute_in_process(
            run_config=by_job["record_webhook_telemetry"].run_config,
            resources=resources,
            instance=instance,
        )
        assert run.success
    rows = query(
        ledger,
        "SELECT tenant_id, connection_id, properties->>'event_type', properties->>'error' "
        "FROM telemetry.events WHERE name = 'openbanking.webhook.unmapped' ORDER BY 3",
    )
    assert rows == [
        (FAMILY, "conn-powens-primary", "CONNECTION_DELETED", None),
        (FAMILY, "conn-powens-primary", "CONNECT_ERROR", "access_denied"),
    ]
    stored = query(ledger, "SELECT string_agg(CAST(properties AS VARCHAR)) FROM telemetry.events")
    assert "FR7630004000031234567890143" not in stored[0][0]


def test_emulator_to_receiver_to_sensor_to_run_to_ledger(tmp_path: Path, powens_env: None) -> None:
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    tenants_file = write_tenants_file(tmp_path / "tenants.yaml", "http://127.0.0.1:9/2.0")
    server = start_in_thread(create_receiver(inbox, load_tenants(tenants_file)))
    url = f"http://127.0.0.1:{server.port}{PATH}"
    config = EmulatorConfig(
        seed=17, transactions=1500, webhook_urls={1: url}, webhook_secret=SECRET
    )
    ledger = tmp_path / "pfo.duckdb"
    try:
        with start_emulator(config) as emulator:
            tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
            assert materialize_ledger(tenants, ledger, FAMILY).success
            before = query(ledger, "SELECT count(*) FROM ledger.bank_transactions")[0][0]
            emulator.advance(2)
            assert emulator.emulator.webhooks_sent == [(url, 200)]
            instance = dg.DagsterInstance.ephemeral()
            resources = {
                **resources_for(tenants, ledger),
                "webhooks": WebhookSensorConfig(inbox_path=str(inbox.path)),
            }
            context = dg.build_sensor_context(
                instance=instance, resources=resources, definitions=defs, cursor=None
            )
            result = powens_webhook_sensor(context)
            assert [(r.job_name, r.partition_key) for r in result.run_requests] == [
                ("sync_openbanking_transactions", FAMILY)
            ]
            again = powens_webhook_sensor(
                dg.build_sensor_context(
                    instance=instance, resources=resources, definitions=defs, cursor=result.cursor
                )
            )
            assert not again.run_requests  # the cursor moved on; the run key guards re-deliveries
            job = defs.resolve_job_def(result.run_requests[0].job_name)
            run = job.execute_in_process(
                partition_key=FAMILY, resources=resources, instance=instance, raise_on_error=True
            )
            assert run.success
        after = query(ledger, "SELECT count(*) FROM ledger.bank_transactions")[0][0]
        assert after > before
    finally:
        server.stop()
        inbox.close()


def test_pfo_connect_prints_the_webview_url_with_a_fresh_code_and_state(
    tmp_path: Path, powens_env, monkeypatch
) -> None:
    from urllib.parse import parse_qs, urlsplit

    from click.testing import CliRunner

    from pfo_pipeline.cli import main

    with start_emulator(EmulatorConfig(seed=2, transactions=200)) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        monkeypatch.setenv("PFO_TENANTS_FILE", str(tenants))
        inbox_file = tmp_path / "inbox.sqlite3"
        result = CliRunner().invoke(
            main, ["connect", "--tenant", FAMILY, "--inbox", str(inbox_file)]
        )
        unknown = CliRunner().invoke(
            main, ["connect", "--tenant", "tenant.nobody", "--inbox", str(inbox_file)]
        )
    assert result.exit_code == 0, result.output
    url = urlsplit(result.output.strip())
    query_ = parse_qs(url.query)
    assert url.netloc == "webview.powens.com" and url.path == "/en/connect"
    assert query_["client_id"] == ["pfo-demo-client"] and query_["code"][0]
    inbox = Inbox(inbox_file)
    try:
        assert (
            inbox.use_connect_state(query_["state"][0]) == FAMILY
        )  # the callback will accept it once
        assert inbox.use_connect_state(query_["state"][0]) is None
    finally:
        inbox.close()
    assert unknown.exit_code != 0 and "tenant.nobody" in unknown.output

"""Signed webhooks over real HTTP both ways: emulator -> receiver -> inbox -> sensor -> run -> ledger,
plus the receiver's refusals and the bank-connect flow."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import orjson
import pytest

from pfo_pipeline.definitions import load_definitions
from pfo_pipeline.defs.resources import WebhookSensorConfig
from pfo_pipeline.defs.webhooks.automation import powens_webhook_sensor
from pfo_pipeline.tenancy.config import load_tenants
from pfo_pipeline.webhooks.inbox import DEFAULT_STATE_TTL, Inbox
from pfo_pipeline.webhooks.receiver import DEFAULT_MAX_BODY_BYTES, REFUSED, create_receiver
from pfo_pipeline.webhooks.signature import sign, signature_date
from powens_emulator import EmulatorConfig, start_emulator
from tests.background_server import start_in_thread
from tests.conftest import (
    FAMILY,
    materialize_ledger,
    query,
    resources_for,
    using_tenants_file,
    write_tenants_file,
)

SECRET = "whsec-test-0123456789"
PATH = "/webhooks/powens/conn-powens-primary/CONNECTION_SYNCED"


@pytest.fixture
def start_receiver(tmp_path: Path, powens_env: None) -> Iterator:
    """Starts receivers on loopback (keyword arguments go to `create_receiver`); stops them after."""
    tenants_file = write_tenants_file(tmp_path / "tenants.yaml", "http://127.0.0.1:9/2.0")
    started: list[tuple[Any, Inbox]] = []

    def start(name: str = "inbox", **options: Any) -> dict[str, Any]:
        inbox = Inbox(tmp_path / f"{name}.sqlite3")
        server = start_in_thread(create_receiver(inbox, load_tenants(tenants_file), **options))
        started.append((server, inbox))
        return {"url": f"http://127.0.0.1:{server.port}", "inbox": inbox, "tenants": tenants_file}

    yield start
    for server, inbox in started:
        server.stop()
        inbox.close()


@pytest.fixture
def receiver(start_receiver) -> dict[str, Any]:
    return start_receiver()


def post(
    receiver,
    body: Any,
    *,
    secret: str = SECRET,
    date: str | None = None,
    path: str = PATH,
    content_type: str | None = "application/json",
    signed_body: bytes | None = None,
):
    """POST signed with `secret`; `body` may be an iterator of chunks (sent chunked, no length)."""
    date = date or signature_date()
    signature = sign(secret, "POST", path, date, body if signed_body is None else signed_body)
    headers = {"BI-Signature-Date": date, "BI-Signature": signature}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return httpx.post(receiver["url"] + path, content=body, headers=headers, timeout=30)


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


def test_unknown_connection_is_answered_like_a_bad_signature(receiver) -> None:
    """No probing: an unknown connection id and a known one with a bad signature look the same."""
    unknown = post(receiver, BODY, path="/webhooks/powens/conn-unknown/CONNECTION_SYNCED")
    forged = post(receiver, BODY, secret="wrong-secret")
    assert unknown.status_code == forged.status_code == 401
    assert unknown.content == forged.content and unknown.json() == REFUSED
    assert receiver["inbox"].count() == 0


def padded(size: int) -> bytes:
    """A JSON object of exactly `size` bytes."""
    head, tail = b'{"user":{"id":1},"pad":"', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def chunked(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """`body` as a stream without a length, so the receiver must count as it reads."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_a_body_over_the_cap_is_a_413_even_when_signed(receiver) -> None:
    over = padded(DEFAULT_MAX_BODY_BYTES + 1)
    assert post(receiver, over).status_code == 413  # refused on Content-Length
    assert post(receiver, chunked(over), signed_body=over).status_code == 413  # counted
    assert receiver["inbox"].count() == 0
    at_cap = padded(DEFAULT_MAX_BODY_BYTES)
    assert post(receiver, chunked(at_cap), signed_body=at_cap).status_code == 200


def test_the_body_cap_is_configurable(start_receiver) -> None:
    small = start_receiver(max_body_bytes=len(BODY) - 1)
    assert post(small, BODY).status_code == 413 and small["inbox"].count() == 0


def run_asgi(app: Any, headers: dict[str, str], chunks: list[bytes]) -> tuple[int, int]:
    """One POST through the ASGI app; (status, how many body chunks the app asked for)."""
    reads = 0
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        body = chunks[reads - 1] if reads <= len(chunks) else b""
        return {"type": "http.request", "body": body, "more_body": reads < len(chunks)}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8787),
    }
    asyncio.run(app(scope, receive, send))
    return statuses[0], reads


def test_an_oversized_body_is_never_read_whole(tmp_path: Path, powens_env: None) -> None:
    """Memory stays flat: a declared length over the cap is refused before reading a byte, and an
    undeclared one stops being read at the first chunk past the cap (of 10 MB sent)."""
    tenants = load_tenants(write_tenants_file(tmp_path / "t.yaml", "http://127.0.0.1:9/2.0"))
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    try:
        app = create_receiver(inbox, tenants)
        chunk = b"x" * (64 * 1024)
        flood = [chunk] * 160
        declared = {"content-type": "application/json", "content-length": str(len(chunk) * 160)}
        assert run_asgi(app, declared, flood) == (413, 0)
        status, reads = run_asgi(app, {"content-type": "application/json"}, flood)
        assert status == 413 and reads == DEFAULT_MAX_BODY_BYTES // len(chunk) + 1
        assert inbox.count() == 0
    finally:
        inbox.close()


@pytest.mark.parametrize(
    "event",
    [
        "CONNECTION_SYNCED%0A2026-01-01 WARNING forged line",
        "CONNECTION_SYNCED%0A",  # `$` in a regex would let this trailing newline through
        "connection_synced",
        "CONNECTION-SYNCED",
        "A" * 65,
    ],
)
def test_only_event_names_pass_and_are_refused_before_logging(
    receiver, caplog: pytest.LogCaptureFixture, event: str
) -> None:
    """Signed for its own path, so only the name check can refuse it."""
    caplog.set_level(logging.WARNING, logger="pfo_pipeline.webhooks")
    path = f"/webhooks/powens/conn-powens-primary/{event}"
    assert post(receiver, BODY, path=path).status_code == 400
    assert receiver["inbox"].count() == 0
    assert all("\n" not in record.getMessage() for record in caplog.records)


def test_logged_values_are_escaped(receiver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="pfo_pipeline.webhooks")
    path = "/webhooks/powens/conn%0A2026-01-01 WARNING forged/CONNECTION_SYNCED"
    assert post(receiver, BODY, path=path).status_code == 401
    messages = [r.getMessage() for r in caplog.records if r.name == "pfo_pipeline.webhooks"]
    assert messages and all("\n" not in message for message in messages)
    assert any("conn\\n2026-01-01" in message for message in messages)


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b"null", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'"text"', "application/json"),
        (BODY, "text/plain"),
        (BODY, None),
        (BODY, "application/jsonp"),
        (BODY, "application/x-www-form-urlencoded"),
    ],
)
def test_only_a_json_object_sent_as_json_is_recorded(
    receiver, body: bytes, content_type: str | None
) -> None:
    assert post(receiver, body, content_type=content_type).status_code == 400
    assert receiver["inbox"].count() == 0


def test_json_with_a_charset_parameter_is_accepted(receiver) -> None:
    response = post(receiver, BODY, content_type="Application/JSON; charset=utf-8")
    assert response.status_code == 200 and receiver["inbox"].count() == 1


def test_checks_run_size_then_name_then_signature_then_shape(receiver) -> None:
    over = padded(DEFAULT_MAX_BODY_BYTES + 1)
    nameless = "/webhooks/powens/conn-unknown/not-an-event"
    assert post(receiver, over, secret="wrong", path=nameless).status_code == 413
    assert post(receiver, BODY, secret="wrong", path=nameless).status_code == 400
    unsigned_nonsense = post(receiver, b"null", secret="wrong", content_type="text/plain")
    assert unsigned_nonsense.status_code == 401 and unsigned_nonsense.json() == REFUSED
    assert receiver["inbox"].count() == 0


def callback(receiver, **params: str) -> httpx.Response:
    return httpx.get(receiver["url"] + "/connect/callback", params=params)


def backdate(inbox: Inbox, state: str, created_at: datetime) -> None:
    conn = sqlite3.connect(inbox.path)
    try:
        with conn:
            conn.execute(
                "UPDATE connect_states SET created_at = ? WHERE state = ?",
                (created_at.isoformat(), state),
            )
    finally:
        conn.close()


def test_connect_states_expire(receiver) -> None:
    inbox = receiver["inbox"]
    now = datetime.now(UTC)
    fresh, stale, ancient = (inbox.new_connect_state(FAMILY) for _ in range(3))
    backdate(inbox, fresh, now - DEFAULT_STATE_TTL + timedelta(minutes=1))
    backdate(inbox, stale, now - DEFAULT_STATE_TTL - timedelta(minutes=1))
    backdate(inbox, ancient, datetime(2024, 1, 1, tzinfo=UTC))
    assert callback(receiver, state=stale, connection_id="7").status_code == 400
    assert callback(receiver, state=ancient, connection_id="7").status_code == 400
    assert callback(receiver, state=fresh, connection_id="7").status_code == 200
    assert [e.event_type for e in inbox.events_after(0)] == ["CONNECT_CALLBACK"]


def test_the_state_lifetime_is_configurable(start_receiver) -> None:
    receiver = start_receiver(state_ttl=DEFAULT_STATE_TTL * 4)
    state = receiver["inbox"].new_connect_state(FAMILY)
    backdate(receiver["inbox"], state, datetime.now(UTC) - DEFAULT_STATE_TTL * 2)
    assert callback(receiver, state=state, connection_id="7").status_code == 200


def test_only_an_accepted_callback_uses_the_state_up(receiver) -> None:
    state = receiver["inbox"].new_connect_state(FAMILY)
    assert callback(receiver, state=state).status_code == 400  # no connection_id: refused
    assert callback(receiver, state=state, connection_id="7").status_code == 200
    assert callback(receiver, state=state, connection_id="7").status_code == 400  # used up


def test_the_connect_error_keeps_its_code_and_masks_its_text(receiver) -> None:
    """The bank page's `error_description` can name the account holder or carry an IBAN: the
    inbox keeps the OAuth code and only the description's length; an `error` that is not a code
    is masked too. Nothing of the text is in the inbox's files."""
    iban = "FR7630004000031234567890143"
    text = f"Compte de Jeanne Dupont-Marchal {iban} refusé"
    state = receiver["inbox"].new_connect_state(FAMILY)
    response = callback(receiver, state=state, error="access_denied", error_description=text)
    assert response.status_code == 400 and iban not in response.text
    assert "Dupont" not in response.text
    other = receiver["inbox"].new_connect_state(FAMILY)
    callback(receiver, state=other, error="Jeanne Dupont refused", error_description="")
    first, second = receiver["inbox"].events_after(0)
    assert first.summary == {
        "error": "access_denied",
        "error_description": f"[redacted: {len(text)} characters]",
    }
    assert second.summary["error"] == "[redacted: not a code]"
    stored = Path(receiver["inbox"].path)
    raw = b"".join(f.read_bytes() for f in stored.parent.glob(stored.name + "*"))
    for secret in (iban, "Jeanne", "Dupont", "Marchal", "refus"):
        assert secret.encode() not in raw, secret


def test_webhook_summaries_keep_ids_and_codes_only(receiver) -> None:
    """A webhook's free text (a state that is a sentence, ids that are names) never reaches the
    inbox; Powens' codes and ids do."""
    body = {
        "user": {"id": "Jeanne Dupont"},
        "connection": {
            "id": 11,
            "state": "Mot de passe de Jeanne Dupont expiré",
            "error_message": "Jeanne Dupont",
            "accounts": [{"id": 5, "name": "Livret de Jeanne Dupont"}, {"id": "Dupont"}],
        },
    }
    assert post(receiver, orjson.dumps(body)).status_code == 200
    coded = {"user": {"id": 1}, "connection": {"id": "12", "state": "SCARequired"}}
    assert post(receiver, orjson.dumps(coded)).status_code == 200
    first, second = receiver["inbox"].events_after(0)
    assert first.summary == {
        "powens_connection_id": 11,
        "state": "[redacted: not a code]",
        "account_ids": [5],
        "transactions": 0,
    }
    assert second.summary["state"] == "SCARequired"
    assert second.summary["powens_connection_id"] == "12"
    stored = Path(receiver["inbox"].path)
    raw = b"".join(f.read_bytes() for f in stored.parent.glob(stored.name + "*"))
    assert b"Dupont" not in raw and b"Jeanne" not in raw
    bad_id = callback(receiver, state=receiver["inbox"].new_connect_state(FAMILY),
                      connection_id="Jeanne Dupont")  # fmt: skip
    assert bad_id.status_code == 400 and "not a Powens id" in bad_id.text


def test_serve_passes_the_body_cap_and_state_lifetime_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from pfo_pipeline.cli import main
    from pfo_pipeline.webhooks import cli as webhooks_cli

    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(
        webhooks_cli, "create_receiver", lambda inbox, tenants, **options: options
    )  # serve reads the tenants once, and names the connections without a webhook secret
    monkeypatch.setattr(webhooks_cli.uvicorn, "run", lambda app, **_: seen.append(app))
    serve = ["webhooks", "serve", "--inbox", str(tmp_path / "inbox.sqlite3")]
    runner = CliRunner()
    assert runner.invoke(main, serve).exit_code == 0
    tuned = ["--max-body-bytes", "1000", "--state-ttl-minutes", "30"]
    assert runner.invoke(main, serve + tuned).exit_code == 0
    assert seen == [
        {"max_body_bytes": DEFAULT_MAX_BODY_BYTES, "state_ttl": DEFAULT_STATE_TTL},
        {"max_body_bytes": 1000, "state_ttl": timedelta(minutes=30)},
    ]


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
    ledger = tmp_path / "ledger"
    resources = {
        **resources_for(ledger),
        "webhooks": WebhookSensorConfig(inbox_path=str(receiver["inbox"].path)),
    }
    instance = dg.DagsterInstance.ephemeral()
    with using_tenants_file(receiver["tenants"]):
        result = powens_webhook_sensor(
            dg.build_sensor_context(
                instance=instance, resources=resources, definitions=load_definitions()
            )
        )
    by_job = {r.job_name: r for r in result.run_requests}
    assert sorted(by_job) == ["record_webhook_telemetry", "sync_openbanking_transactions"]
    job = load_definitions().resolve_job_def("record_webhook_telemetry")
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
    ledger = tmp_path / "ledger"
    try:
        with start_emulator(config) as emulator:
            tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
            assert materialize_ledger(tenants, ledger, FAMILY).success
            before = query(ledger, "SELECT count(*) FROM ledger.bank_transactions")[0][0]
            emulator.advance(2)
            assert emulator.emulator.webhooks_sent == [(url, 200)]
            instance = dg.DagsterInstance.ephemeral()
            resources = {
                **resources_for(ledger),
                "webhooks": WebhookSensorConfig(inbox_path=str(inbox.path)),
            }
            context = dg.build_sensor_context(
                instance=instance, resources=resources, definitions=load_definitions(), cursor=None
            )
            with using_tenants_file(tenants):
                result = powens_webhook_sensor(context)
            assert [(r.job_name, r.partition_key) for r in result.run_requests] == [
                ("sync_openbanking_transactions", FAMILY)
            ]
            with using_tenants_file(tenants):
                again = powens_webhook_sensor(
                    dg.build_sensor_context(
                        instance=instance,
                        resources=resources,
                        definitions=load_definitions(),
                        cursor=result.cursor,
                    )
                )
            assert not again.run_requests  # the cursor moved on; the run key guards re-deliveries
            job = load_definitions().resolve_job_def(result.run_requests[0].job_name)
            with using_tenants_file(tenants):
                run = job.execute_in_process(
                    partition_key=FAMILY,
                    resources=resources,
                    instance=instance,
                    raise_on_error=True,
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
    [link] = [line for line in result.output.splitlines() if line.startswith("https://")]
    assert "targets the Powens emulator at" in result.output  # said on stderr
    url = urlsplit(link)
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

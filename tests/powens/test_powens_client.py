"""The Powens client against the emulator over a real socket: pagination, faults, auth, errors."""

from __future__ import annotations

import gc
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from pfo_pipeline.powens import (
    PowensAuthError,
    PowensClient,
    PowensInvalidResponseError,
    PowensRateLimitError,
    PowensRequestError,
    PowensUnavailableError,
)
from pfo_pipeline.powens.options import ClientOptions
from powens_emulator import EmulatorConfig, FaultConfig, start_emulator

CLIENT_ID, CLIENT_SECRET = "pfo-demo-client", "pfo-demo-secret"


@pytest.fixture(scope="module")
def emulator():
    with start_emulator(EmulatorConfig(seed=7, transactions=3500)) as handle:
        yield handle


@pytest.fixture
def faults(emulator) -> Iterator:
    """Faults for one test; the emulator is healthy again afterwards."""
    yield emulator.set_faults
    emulator.set_faults(FaultConfig())


def make_client(emulator, **kwargs) -> PowensClient:
    """A client on the emulator, impatient by default; option keys (`timeout_s`,
    `max_attempts`, ...) go to its `ClientOptions`, the others to the client."""
    fields = set(ClientOptions.__dataclass_fields__)
    settings = {"backoff_initial_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 2.0}
    settings.update({k: v for k, v in kwargs.items() if k in fields})
    identity = {"user_id": 1, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    identity.update({k: v for k, v in kwargs.items() if k not in fields})
    return PowensClient(emulator.base_url, options=ClientOptions(**settings), **identity)


def all_ids(client: PowensClient, **kwargs) -> list[int]:
    ids: list[int] = []
    for page in client.iter_transaction_pages(**kwargs):
        assert not page.rejects
        ids.extend(r.id for r in page.records)
    return ids


def test_pagination_is_exact_without_gap_or_repeat(emulator) -> None:
    with make_client(emulator) as client:
        pages = list(client.iter_transaction_pages(include_deleted=True))
    ids = [r.id for p in pages for r in p.records]
    assert len(pages) == -(-len(ids) // 1000) and len(pages) >= 4
    assert len(ids) == len(set(ids)) == pages[0].total
    raw = emulator_ids(emulator, include_deleted=True)
    assert set(ids) == raw


def emulator_ids(emulator, include_deleted: bool) -> set[int]:
    """What the emulator serves, read over HTTP with small pages (independent of the client)."""
    import httpx

    token = emulator.token_for(1)
    ids: set[int] = set()
    url = f"{emulator.base_url}/users/me/transactions"
    params = {"limit": 250, **({"all": ""} if include_deleted else {})}
    while url:
        body = httpx.get(url, params=params, headers={"Authorization": f"Bearer {token}"}).json()
        ids.update(t["id"] for t in body["transactions"])
        url, params = (body["_links"]["next"] or {}).get("href"), None
    return ids


def test_lists_come_as_powens_sent_them(emulator) -> None:
    """One form per endpoint: the sync layer parses, so one malformed account is quarantined
    instead of failing the call."""
    with make_client(emulator) as client:
        connections = client.list_connections()
        accounts = client.list_accounts(include_disabled=True)
        enabled = client.list_accounts(include_disabled=False)
    assert connections and all(isinstance(c["connector"], dict) for c in connections)
    assert all(isinstance(a, dict) and isinstance(a["id"], int) for a in accounts)
    assert len(enabled) <= len(accounts)


def test_date_bounds_select_by_transaction_date_not_application_date(emulator) -> None:
    """Powens applies `min_date`/`max_date` to `application_date` unless asked for `date`; the
    ledger's day is `date`, so a card paid on the 1st and debited on the 2nd must come with the
    2nd's window (the emulator applies card payments the day before their debit)."""
    with make_client(emulator) as client:
        every = [r for p in client.iter_transaction_pages(include_deleted=True) for r in p.records]
        day = next(r.date for r in every if r.application_date and r.application_date < r.date)
        window = [
            r
            for p in client.iter_transaction_pages(min_date=day, max_date=day, include_deleted=True)
            for r in p.records
        ]
    assert {r.id for r in window} == {r.id for r in every if r.date == day}
    assert any(r.application_date != r.date for r in window)


def test_deleted_rows_only_with_all(emulator) -> None:
    with make_client(emulator) as client:
        with_deleted = set(all_ids(client, include_deleted=True))
        without = set(all_ids(client, include_deleted=False))
    assert without < with_deleted


def test_rate_limits_are_retried_honouring_retry_after(emulator, faults) -> None:
    expected = emulator_ids(emulator, include_deleted=True)
    faults(FaultConfig(rate_429=0.3, retry_after_s=0.01, seed=1))
    with make_client(emulator, max_attempts=8) as client:
        ids = all_ids(client, include_deleted=True)
        assert client.retries > 0
    assert set(ids) == expected and len(ids) == len(expected)


def test_html_503_is_retried_then_reported(emulator, faults) -> None:
    token = emulator.token_for(1)
    faults(FaultConfig(rate_503=0.3, seed=2))
    with make_client(emulator, api_key=token, max_attempts=8) as client:
        assert len(all_ids(client)) > 0 and client.retries > 0
    faults(FaultConfig(rate_503=1.0))
    with (
        make_client(emulator, api_key=token, max_attempts=2) as client,
        pytest.raises(PowensUnavailableError) as info,
    ):
        client.list_accounts()
    message = str(info.value)
    assert "list accounts" in message and "status=503" in message and "non-JSON" in message


def test_a_failed_renewal_asks_for_a_fresh_token_a_bounded_number_of_times(
    emulator, faults, monkeypatch
) -> None:
    """POST /auth/renew is never replayed by the transport after a 5xx; the auth layer asks for
    a fresh token instead (a second token does not harm the first), RENEW_ATTEMPTS times."""
    from pfo_pipeline.powens import auth

    monkeypatch.setattr(auth, "RENEW_PAUSE_S", 0.0)
    faults(FaultConfig(rate_503=1.0))
    with make_client(emulator, max_attempts=5) as client:
        with pytest.raises(PowensUnavailableError, match=r"renew token.*3 fresh renewals asked"):
            client.list_accounts()
        assert client.retries == 0 and client.renewals == 0


def test_one_failed_renewal_does_not_fail_the_load(emulator, monkeypatch) -> None:
    from pfo_pipeline.powens import auth

    monkeypatch.setattr(auth, "RENEW_PAUSE_S", 0.0)
    real = auth.PowensTransport.post_not_replayed
    calls: list[str] = []

    def first_times_out(self, path, *, json, operation):
        calls.append(path)
        if len(calls) == 1:
            raise PowensUnavailableError("timed out; not replayed", operation=operation)
        return real(self, path, json=json, operation=operation)

    monkeypatch.setattr(auth.PowensTransport, "post_not_replayed", first_times_out)
    with make_client(emulator) as client:
        assert client.list_accounts()
        assert client.renewals == 1 and calls == ["auth/renew", "auth/renew"]


def test_slow_responses_time_out_and_are_retried(emulator, faults) -> None:
    token = emulator.token_for(1)
    faults(FaultConfig(rate_slow=0.3, slow_s=1.0, seed=3))
    with make_client(emulator, api_key=token, timeout_s=0.3, max_attempts=10) as client:
        assert len(client.list_accounts()) >= 7
        assert len(all_ids(client)) > 0
    faults(FaultConfig(rate_slow=1.0, slow_s=1.0))
    with (
        make_client(emulator, api_key=token, timeout_s=0.2, max_attempts=2) as client,
        pytest.raises(PowensUnavailableError, match="timed out"),
    ):
        client.list_connections()


def test_expired_token_is_renewed_once(emulator, faults, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="pfo_pipeline.powens")
    expected = emulator_ids(emulator, include_deleted=True)
    faults(FaultConfig(rate_token_expiry=0.2, seed=4))
    with make_client(emulator, api_key=emulator.token_for(1)) as client:
        ids = all_ids(client, include_deleted=True)
        assert client.renewals >= 1
    assert set(ids) == expected and len(ids) == len(expected)
    # A token expiring is routine: its renewal is INFO, and a healthy run logs no WARNING.
    renewals = [r for r in caplog.records if "renew" in r.getMessage()]
    assert renewals and all(r.levelno == logging.INFO for r in renewals)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_expired_token_without_credentials_is_an_auth_error(emulator, faults) -> None:
    faults(FaultConfig(rate_token_expiry=1.0))
    with PowensClient(emulator.base_url, user_id=1, api_key=emulator.token_for(1)) as client:
        with pytest.raises(PowensAuthError) as info:
            client.list_accounts()
    assert info.value.status == 401 and info.value.kind == "auth"


def test_wrong_client_secret_is_an_auth_error(emulator) -> None:
    with make_client(emulator, client_secret="wrong-secret-value") as client:
        with pytest.raises(PowensAuthError, match="renew token"):
            client.list_accounts()


def test_rate_limit_exhausted_maps_to_rate_limit_error(emulator, faults) -> None:
    faults(FaultConfig(rate_429=1.0, retry_after_s=0.01))
    with (
        make_client(emulator, max_attempts=2) as client,
        pytest.raises(PowensRateLimitError) as info,
    ):
        client.list_connections()
    assert info.value.kind == "rate_limit" and info.value.retry_after == pytest.approx(0.01)


def test_bad_request_maps_to_request_error(emulator) -> None:
    with make_client(emulator) as client, pytest.raises(PowensRequestError) as info:
        next(client.iter_transaction_pages(limit=5000))
    assert info.value.status == 400 and info.value.code == "notSupported"


def test_tokens_never_reach_logs_errors_or_reprs(emulator, faults, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    token = emulator.token_for(1)
    faults(FaultConfig(rate_token_expiry=0.3, rate_429=0.2, retry_after_s=0.01, seed=5))
    with make_client(emulator, api_key=token, max_attempts=10) as client:
        all_ids(client)
        renewed = client._auth._token
        assert token not in repr(client) and renewed not in repr(client)
    faults(FaultConfig(rate_token_expiry=1.0))
    with PowensClient(emulator.base_url, user_id=1, api_key=token) as client:
        with pytest.raises(PowensAuthError) as info:
            client.list_connections()
    for secret in (token, renewed, CLIENT_SECRET):
        assert secret not in caplog.text
        assert secret not in str(info.value)
    assert "retrying" in caplog.text  # retries are logged, just without secrets


class _CraftedPages(BaseHTTPRequestHandler):
    """A real server whose `_links.next` misbehaves (another host, or a loop)."""

    mode = "cross-host"

    def do_GET(self) -> None:
        host = self.headers["Host"]
        if self.mode == "cross-host":
            nxt = "http://attacker.example:9/2.0/users/me/transactions?offset=1000"
        else:
            nxt = f"http://{host}/2.0/users/me/transactions?limit=1&offset=1"
        body = {
            "transactions": [{"id": 1, "id_account": 1, "date": "2026-01-01", "value": 1.0}],
            "total": 3,
            "_links": {"next": {"href": nxt}},
        }
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("mode, message", [("cross-host", "another host"), ("loop", "repeated")])
def test_dangerous_next_links_are_refused(mode: str, message: str) -> None:
    handler = type("Handler", (_CraftedPages,), {"mode": mode})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}/2.0"
        with PowensClient(base, user_id=1, api_key="t") as client:
            with pytest.raises(PowensInvalidResponseError, match=message):
                list(client.iter_transaction_pages())
    finally:
        server.shutdown()
        server.server_close()


def test_an_unreachable_powens_is_named_by_host_and_port() -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = PowensClient(
        f"http://127.0.0.1:{port}/2.0",
        user_id=1,
        api_key="a-token",
        options=ClientOptions(max_attempts=2, backoff_initial_s=0.01),
    )
    with client, pytest.raises(PowensUnavailableError) as info:
        client.list_accounts()
    message = str(info.value)
    assert f"cannot reach 127.0.0.1:{port}" in message and "list accounts" in message
    assert "a-token" not in message


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "powens-nowhere.invalid"])
def test_an_unreachable_powens_fails_after_a_few_quick_attempts(host: str) -> None:
    """Connection refused or a name that does not resolve: `UNREACHABLE_ATTEMPTS` attempts (not
    the client's `max_attempts`), and the renewal asks no fresh token (no server answered)."""
    from pfo_pipeline.powens.errors import PowensUnreachableError
    from pfo_pipeline.powens.transport import UNREACHABLE_ATTEMPTS

    address = host.format(port=_closed_port())
    client = PowensClient(
        f"http://{address}/2.0",
        user_id=1,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        options=ClientOptions(max_attempts=8, backoff_initial_s=0.01),
    )
    with client, pytest.raises(PowensUnreachableError) as info:
        client.list_accounts()
    assert client.retries == UNREACHABLE_ATTEMPTS - 1  # one renewal's attempts, then no more
    first_line = str(info.value).splitlines()[0]
    shown = address if ":" in address else f"{address}:80"
    assert f"cannot reach {shown}" in first_line and "renew token" in first_line
    assert f"gave up after {UNREACHABLE_ATTEMPTS} attempts" in first_line
    assert CLIENT_SECRET not in str(info.value)


def test_a_read_page_is_freed_without_the_cyclic_collector(emulator) -> None:
    """httpx keeps a response and its stream in a reference cycle (encode/httpx#3733): left to
    the collector, every page's ~1 MB body outlived it, and a long fetch had to collect after
    every batch. The transport breaks the cycle once the body is read."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        with make_client(emulator) as client:
            pages = list(client.iter_transaction_pages(limit=500))
        gc.collect()
        # Pages only: a rare 401 or token renewal may still sit in an exception's cycle.
        held = [
            o
            for o in gc.garbage
            if isinstance(o, httpx.Response)
            and o.request.url.path.endswith("/transactions")
            and o.status_code == 200
        ]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert len(pages) >= 7
    assert held == []

"""Every shape of a Powens list the client may meet, over a real socket: `_links.next` or offset
paging, with or without `total`; a listing that ends early is an error, never a short load;
`noAccount` is an empty list; every transactions listing states its window."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from pfo_pipeline.powens import PowensClient, PowensInvalidResponseError, PowensRequestError
from pfo_pipeline.powens.calendar_bounds import EARLIEST_DATE
from pfo_pipeline.powens.options import ClientOptions
from powens_emulator import EmulatorConfig, FaultConfig, start_emulator

CLIENT_ID, CLIENT_SECRET = "pfo-demo-client", "pfo-demo-secret"
# (path, query) -> (HTTP status, JSON body)
Serve = Callable[[str, dict[str, str]], tuple[int, dict]]


def tx(n: int) -> dict:
    return {"id": n, "id_account": 1, "date": "2026-01-01", "value": -1.5, "type": "card"}


@contextmanager
def powens(serve: Serve) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A real HTTP server answering with `serve`; yields its base URL and the queries it got."""
    queries: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            queries.append(query)
            status, body = serve(parts.path, query)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/2.0", queries
    finally:
        server.shutdown()
        server.server_close()


def offset_list(rows: int, *, total: int | None = None, cap: int | None = None) -> Serve:
    """A list paged by `offset` only (no `_links`, as S3 documents lists); `total` if given;
    `cap` rows at most per page whatever the `limit` (a server that pages smaller)."""

    def serve(path: str, query: dict[str, str]) -> tuple[int, dict]:
        offset, limit = int(query.get("offset", 0)), int(query["limit"])
        size = min(limit, cap or limit)
        body: dict = {"transactions": [tx(n) for n in range(offset, min(offset + size, rows))]}
        if total is not None:
            body["total"] = total
        return 200, body

    return serve


def ids(base: str, **kwargs) -> list[int]:
    with PowensClient(
        base, user_id=1, api_key="t", options=ClientOptions(max_attempts=1)
    ) as client:
        return [r.id for p in client.iter_transaction_pages(**kwargs) for r in p.records]


@pytest.mark.parametrize("rows", [0, 1, 4, 5, 12])
@pytest.mark.parametrize("with_total", [True, False])
def test_without_links_pages_by_offset_until_a_short_page(rows: int, with_total: bool) -> None:
    with powens(offset_list(rows, total=rows if with_total else None)) as (base, queries):
        assert ids(base, limit=4) == list(range(rows))
    # Full pages asked for more; the short (or empty) page ended the listing.
    assert [int(q.get("offset", 0)) for q in queries] == list(range(0, rows + 1, 4))


def test_a_listing_shorter_than_its_total_is_an_error_not_a_short_load() -> None:
    # The server pages by 3 whatever the limit: page one is "short" yet `total` says 10.
    with powens(offset_list(10, total=10, cap=3)) as (base, _):
        with pytest.raises(PowensInvalidResponseError, match=r"ended after 3 rows.*total=10"):
            ids(base, limit=4)


def test_a_missing_next_link_while_total_says_more_is_an_error() -> None:
    def serve(path: str, query: dict[str, str]) -> tuple[int, dict]:
        return 200, {"transactions": [tx(1), tx(2)], "total": 5, "_links": {"next": None}}

    with powens(serve) as (base, _):
        with pytest.raises(PowensInvalidResponseError, match="refusing a short load"):
            ids(base, limit=2)


def test_a_server_ignoring_offset_is_refused_not_looped() -> None:
    def serve(path: str, query: dict[str, str]) -> tuple[int, dict]:
        return 200, {"transactions": [tx(1), tx(2)]}

    with powens(serve) as (base, _):
        with pytest.raises(PowensInvalidResponseError, match="ignored `offset`"):
            ids(base, limit=2)


def test_a_relative_next_link_is_followed_on_the_same_host() -> None:
    """S6 saw relative `/2.0/...` hrefs (facts §7)."""

    def serve(path: str, query: dict[str, str]) -> tuple[int, dict]:
        if query.get("page") == "2":
            return 200, {"transactions": [tx(3)], "_links": {"next": None}}
        nxt = {"href": "/2.0/users/1/transactions?page=2"}
        return 200, {"transactions": [tx(1), tx(2)], "_links": {"next": nxt}}

    with powens(serve) as (base, queries):
        assert ids(base, limit=2) == [1, 2, 3]
    assert queries[1] == {"page": "2"}  # followed verbatim: no parameter added


def test_every_listing_states_its_window() -> None:
    """Facts §5: a list without `min_date` may keep the last month only (S2); the client always
    sends one, early enough for any history (S8's 1900-01-01), and filters on `date`."""
    with powens(offset_list(0)) as (base, queries):
        ids(base)
        ids(base, last_update=None, min_date=date(2025, 2, 1), max_date=date(2025, 2, 28))
        with PowensClient(base, user_id=1, api_key="t") as client:
            from datetime import datetime

            list(client.iter_transaction_pages(last_update=datetime(2026, 1, 2, 3, 4, 5)))
    full, window, incremental = queries
    assert full["min_date"] == EARLIEST_DATE.isoformat() == "1900-01-01"
    assert full["filter"] == "date" and "max_date" not in full and "all" in full
    assert (window["min_date"], window["max_date"]) == ("2025-02-01", "2025-02-28")
    assert incremental["min_date"] == "1900-01-01"
    assert incremental["last_update"] == "2026-01-02 03:04:05" and incremental["filter"] == "date"


@pytest.mark.parametrize("status", [400, 409])
def test_no_account_is_an_empty_list_on_accounts_and_transactions(status: int) -> None:
    """S3 answers 400 `noAccount` for a user with no account yet; S8 mocks a 409 (facts §10)."""

    def serve(path: str, query: dict[str, str]) -> tuple[int, dict]:
        body = {"code": "noAccount", "description": "No bank account is available.",
                "message": None, "request_id": "r-1"}  # fmt: skip
        return status, body

    with powens(serve) as (base, queries):
        with PowensClient(
            base, user_id=1, api_key="t", options=ClientOptions(max_attempts=1)
        ) as client:
            assert client.list_accounts() == []
            assert list(client.iter_transaction_pages()) == []
    assert len(queries) == 2  # nothing retried


def test_no_account_after_the_first_page_is_an_error() -> None:
    """An empty answer is only the whole listing's: mid-chain it would be a short load."""

    def serve(path: str, query: dict[str, str]) -> tuple[int, dict]:
        if query.get("offset"):
            return 400, {"code": "noAccount", "description": "No bank account is available."}
        return 200, {"transactions": [tx(1), tx(2)]}

    with powens(serve) as (base, _):
        with pytest.raises(PowensRequestError, match="noAccount"):
            ids(base, limit=2)


def test_other_4xx_codes_still_fail() -> None:
    def serve(path: str, query: dict[str, str]) -> tuple[int, dict]:
        return 400, {"code": "bug", "description": "broken"}

    with powens(serve) as (base, _):
        with PowensClient(
            base, user_id=1, api_key="t", options=ClientOptions(max_attempts=1)
        ) as client:
            with pytest.raises(PowensRequestError, match="code=bug"):
                client.list_accounts()


@pytest.fixture(scope="module")
def emulator():
    with start_emulator(EmulatorConfig(seed=8, transactions=1500)) as handle:
        yield handle


def client_of(emulator) -> PowensClient:
    return PowensClient(
        emulator.base_url, user_id=1, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    )


@pytest.mark.parametrize(
    "faults",
    [
        FaultConfig(lists_without_links=True),
        FaultConfig(lists_without_links=True, lists_without_total=True),
    ],
    ids=["no links", "no links nor total"],
)
def test_both_list_shapes_read_the_same_rows(emulator, faults) -> None:
    with client_of(emulator) as client:
        linked = [r.id for p in client.iter_transaction_pages(limit=100) for r in p.records]
        emulator.set_faults(faults)
        try:
            paged = [r.id for p in client.iter_transaction_pages(limit=100) for r in p.records]
        finally:
            emulator.set_faults(FaultConfig())
    assert paged == linked and len(linked) > 1000


def test_the_month_window_switch_is_what_an_unstated_window_would_cost(emulator) -> None:
    """Without `min_date` the emulator (switched to S2's legacy default) keeps a month: the
    client, stating its window, still reads everything."""
    import httpx

    emulator.set_faults(FaultConfig(month_window_without_min_date=True))
    try:
        headers = {"Authorization": f"Bearer {emulator.token_for(1)}"}
        bare = httpx.get(
            f"{emulator.base_url}/users/me/transactions",
            params={"limit": 1000, "all": ""},
            headers=headers,
        ).json()
        with client_of(emulator) as client:
            stated = [r for p in client.iter_transaction_pages() for r in p.records]
    finally:
        emulator.set_faults(FaultConfig())
    assert bare["transactions"] and len(bare["transactions"]) < 200 < len(stated)
    oldest = min(r.date for r in stated)
    assert (max(r.date for r in stated) - oldest).days > 365

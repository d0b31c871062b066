"""Powens answers in hundreds of milliseconds: the emulator's latency is a seeded
fixed + jitter delay per request, waited asynchronously so concurrent requests overlap, and
independent chains (date windows, per-account lists) are served correctly side by side.

No timing asserts: overlap is read from the emulator's own traffic record (requests in flight at
once), and the delays from what it applied or asked a fake clock to wait."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import httpx
import pytest

from powens_emulator import EmulatorConfig, FaultConfig, start_emulator

NOW = datetime(2026, 11, 24, 8, 0, 0)
WINDOWS = [
    ("2026-07-01", "2026-07-31"),
    ("2026-08-01", "2026-08-31"),
    ("2026-09-01", "2026-09-30"),
    ("2026-10-01", "2026-10-31"),
]


def chain(emulator, path: str = "/users/me/transactions", **params) -> list[dict]:
    """Every row of a list, following `_links.next.href`; 60 s client timeout (never hangs)."""
    rows, url, query = [], f"{emulator.base_url}{path}", {"limit": 100, **params}
    headers = {"Authorization": f"Bearer {emulator.token_for(1)}"}
    while url:
        response = httpx.get(url, params=query, headers=headers, timeout=60)
        response.raise_for_status()
        body = response.json()
        rows += body["transactions"]
        url, query = (body["_links"]["next"] or {}).get("href"), None
    return rows


def at_once(calls: list) -> list:
    """Run the calls in threads released together by a barrier; their results in order."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def hold_until_waiting(emulator, count: int) -> list[float]:
    """Replace the emulator's clock with one that holds every request until `count` are waiting,
    so they are in flight together however fast or slow the machine is (were requests served one
    after another, the first would wait for ever and the client's timeout would fail the test).
    Returns the list the delays asked for are recorded in."""
    asked: list[float] = []
    all_waiting = asyncio.Event()

    async def gate(seconds: float) -> None:
        asked.append(seconds)
        if len(asked) == count:
            all_waiting.set()
        await asyncio.wait_for(all_waiting.wait(), timeout=30)

    emulator.emulator.sleep = gate
    return asked


@pytest.fixture(scope="module")
def emulator():
    with start_emulator(EmulatorConfig(seed=21, transactions=3000, now=NOW)) as handle:
        yield handle


@pytest.fixture(autouse=True)
def _clean(emulator):
    emulator.set_faults(FaultConfig())
    emulator.emulator.sleep = asyncio.sleep
    emulator.traffic.reset()
    yield
    emulator.set_faults(FaultConfig())
    emulator.emulator.sleep = asyncio.sleep


def test_concurrent_windows_overlap_under_latency(emulator) -> None:
    """Four windows asked at once with 200 ms of latency are all in flight together (a gated clock
    holds them until all four wait, so no machine is too slow to overlap them), each asked to wait
    200 ms, and each answers what it answers alone."""
    alone = [chain(emulator, min_date=lo, max_date=hi, limit=1000) for lo, hi in WINDOWS]
    emulator.set_faults(FaultConfig(latency_ms=200))
    emulator.traffic.reset()
    asked = hold_until_waiting(emulator, len(WINDOWS))
    together = at_once(
        [lambda lo=lo, hi=hi: chain(emulator, min_date=lo, max_date=hi, limit=1000)
         for lo, hi in WINDOWS]
    )  # fmt: skip
    assert together == alone and all(together)
    traffic = emulator.traffic.to_json()
    assert traffic["max_in_flight"] == 4 and traffic["requests"] == 4
    assert traffic["delays_ms"] == [200.0] * 4 and asked == [0.2] * 4


def test_a_waiting_request_never_blocks_another(emulator) -> None:
    """A fake clock holds every request until four are waiting: were requests served one after
    another, the first would wait for ever (the client's timeout would fail the test)."""
    asked = hold_until_waiting(emulator, 4)
    emulator.set_faults(FaultConfig(latency_ms=300))
    paths = ["/users/me/transactions", "/users/me/accounts/101/transactions",
             "/users/me/accounts/102/transactions", "/users/me/accounts/104/transactions"]  # fmt: skip
    headers = {"Authorization": f"Bearer {emulator.token_for(1)}"}
    pages = at_once(
        [lambda p=p: httpx.get(f"{emulator.base_url}{p}", params={"limit": 5}, headers=headers,
                               timeout=60) for p in paths]
    )  # fmt: skip
    assert asked == [0.3] * 4 and emulator.traffic.max_in_flight == 4
    assert all(len(page.json()["transactions"]) == 5 for page in pages)


def test_jitter_is_drawn_from_the_seed(emulator) -> None:
    """Latency + jitter × u, u in [0, 1) per request: the same seed, the same delays."""
    waited: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waited.append(seconds)

    emulator.emulator.sleep = fake_sleep

    def delays(seed: int) -> list[float]:
        emulator.set_faults(FaultConfig(latency_ms=250, jitter_ms=100, seed=seed))
        emulator.traffic.reset()
        for _ in range(8):
            httpx.get(f"{emulator.base_url}/connectors").raise_for_status()
        return list(emulator.traffic.delays_ms)

    first, again, other = delays(3), delays(3), delays(4)
    assert first == again != other
    assert all(250 <= d < 350 for d in first) and len(set(first)) == 8
    assert waited == [d / 1000 for d in first + again + other]
    # Control routes are not Powens': no latency, not counted.
    httpx.get(f"{emulator.base_url}/__emulator/state").raise_for_status()
    assert len(emulator.traffic.delays_ms) == 8


def test_latency_does_not_change_which_requests_other_faults_hit(emulator) -> None:
    async def no_wait(seconds: float) -> None:
        return None

    emulator.emulator.sleep = no_wait

    def statuses(**latency: float) -> list[int]:
        emulator.set_faults(FaultConfig(rate_429=0.5, seed=8, **latency))
        return [httpx.get(f"{emulator.base_url}/connectors").status_code for _ in range(20)]

    assert statuses() == statuses(latency_ms=100, jitter_ms=50)


def test_429_under_concurrency_carries_retry_after(emulator) -> None:
    emulator.set_faults(FaultConfig(rate_429=1.0, retry_after_s=1.5, latency_ms=50))
    headers = {"Authorization": f"Bearer {emulator.token_for(1)}"}
    url = f"{emulator.base_url}/users/me/transactions"
    answers = at_once(
        [lambda lo=lo, hi=hi: httpx.get(url, params={"limit": 10, "min_date": lo, "max_date": hi},
                                        headers=headers, timeout=60) for lo, hi in WINDOWS]
    )  # fmt: skip
    assert [(a.status_code, a.headers["Retry-After"]) for a in answers] == [(429, "1.5")] * 4
    assert all(a.json()["code"] == "tooManySync" for a in answers)  # S3's enum (issue 25)


def test_the_per_account_list_is_the_users_list_for_that_account(emulator) -> None:
    everything = chain(emulator, all="", limit=1000)
    headers = {"Authorization": f"Bearer {emulator.token_for(1)}"}
    for account in (101, 102, 104, 107):
        mine = chain(emulator, f"/users/me/accounts/{account}/transactions", all="")
        assert mine and mine == [t for t in everything if t["id_account"] == account]
        first = httpx.get(
            f"{emulator.base_url}/users/1/accounts/{account}/transactions",
            params={"limit": 100, "all": ""},
            headers=headers,
        ).json()
        assert first["total"] == len(mine)
        assert first["first_date"] == min(t["date"] for t in mine)
        assert first["last_date"] == max(t["date"] for t in mine)
        if len(mine) > 100:
            assert first["_links"]["next"]["href"].startswith(
                f"{emulator.base_url}/users/1/accounts/{account}/transactions?"
            )
    window = chain(emulator, "/users/me/accounts/101/transactions", min_date="2026-10-01",
                   max_date="2026-10-31")  # fmt: skip
    assert window and all("2026-10-01" <= t["date"] <= "2026-10-31" for t in window)
    for other in ("201", "999", "abc"):  # another user's account, unknown, not an id
        response = httpx.get(
            f"{emulator.base_url}/users/me/accounts/{other}/transactions",
            params={"limit": 10},
            headers=headers,
        )
        assert response.status_code == 404 and response.json()["code"] == "forbidden"


def test_many_chains_side_by_side_answer_what_each_answers_alone(emulator) -> None:
    """Twelve monthly windows, paged 100 rows at a time by six clients at once, with latency:
    every chain equals its sequential read, and together they are the year."""
    months = [(f"2026-{m:02d}-01", f"2026-{m:02d}-{last}") for m, last in enumerate(
        (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31), start=1)]  # fmt: skip
    alone = [chain(emulator, min_date=lo, max_date=hi) for lo, hi in months]
    emulator.set_faults(FaultConfig(latency_ms=20, jitter_ms=20, seed=1))
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(lambda w: chain(emulator, min_date=w[0], max_date=w[1]), months))
    assert together == alone
    year = chain(emulator, min_date="2026-01-01", max_date="2026-12-31", limit=1000)
    assert sorted(t["id"] for c in together for t in c) == sorted(t["id"] for t in year)


def test_latency_is_set_on_the_faults_route_and_reported(emulator) -> None:
    control = f"{emulator.base_url}/__emulator"
    response = httpx.post(f"{control}/faults", json={"latency_ms": 120, "jitter_ms": 30})
    assert response.status_code == 200
    assert emulator.emulator.faults == FaultConfig(latency_ms=120, jitter_ms=30)
    refused = httpx.post(f"{control}/faults", json={"latency_ms": -1})
    assert refused.status_code == 400 and refused.json()["key"] == "latency_ms"
    httpx.get(f"{emulator.base_url}/connectors").raise_for_status()
    state = httpx.get(f"{control}/state").json()
    assert state["faults"]["latency_ms"] == 120 and state["traffic"]["requests"] == 1
    assert 120 <= state["traffic"]["delays_ms"][0] < 150
    reset = httpx.post(f"{control}/traffic/reset").json()
    assert reset["requests"] == 0 and reset["delays_ms"] == []

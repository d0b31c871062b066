"""Transactions read as concurrent `_links.next` chains over date windows:
the union of the windows is the single chain's result, exactly, also while Powens changes its
data, under 429 storms, a failing chain and a killed process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from pfo_pipeline.operations.date_windows import plan_windows
from pfo_pipeline.operations.sync_context import new_context
from pfo_pipeline.operations.transaction_fetch import ChainWatch, TransactionFetch
from pfo_pipeline.operations.transactions_sync import TransactionsSyncOptions, sync_transactions
from pfo_pipeline.powens import PowensClient, PowensRequestError, TransactionPage
from pfo_pipeline.powens.models import PowensTransaction
from pfo_pipeline.powens.options import ClientOptions
from pfo_pipeline.powens.transport import SharedBackoff
from powens_emulator import EmulatorConfig, FaultConfig, start_emulator
from powens_emulator.clock import day_number as _day
from powens_emulator.clock import seconds as _ts
from tests.conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    FAMILY,
    ledger_digests,
    materialize_ledger,
    open_ledger,
    query,
)
from tests.ledger_expectations import (
    CONTENT,
    FAULT_MIX,
    KILLED_SYNC,
    NOW,
    RECORDS_COMPARED,
    assert_ledger_matches_emulator,
)

CONNECTION = "conn-powens-primary"


def run_config(concurrency: int, page_size: int = 100, **extra: object) -> dict:
    config = {"fetch_concurrency": concurrency, "page_size": page_size, **extra}
    return {"ops": {"bank_transactions": {"config": config}}}


def make_client(emulator, **kwargs: object) -> PowensClient:
    """A client on the emulator, impatient by default; option keys (`timeout_s`,
    `max_attempts`, ...) go to its `ClientOptions`, the others to the client."""
    fields = set(ClientOptions.__dataclass_fields__)
    settings = {"backoff_initial_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 2.0}
    settings.update({k: v for k, v in kwargs.items() if k in fields})
    identity = {"user_id": 1, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    identity.update({k: v for k, v in kwargs.items() if k not in fields})
    return PowensClient(emulator.base_url, options=ClientOptions(**settings), **identity)


FAMILY_CONFIG = EmulatorConfig(seed=21, transactions=2000, now=NOW)


@pytest.fixture
def family(tmp_path: Path, powens_env: None):
    from tests.conftest import write_tenants_file

    with start_emulator(FAMILY_CONFIG) as emulator:
        yield emulator, write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)


@pytest.fixture(scope="module")
def clean_start(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The family as it starts (seeded, its clock fixed), synced over one chain: what every
    windowed, faulty or killed sync of an unchanged family must equal. Built once a module."""
    from tests.conftest import demo_credentials, write_tenants_file

    tmp = tmp_path_factory.mktemp("clean_start")
    with demo_credentials(), start_emulator(FAMILY_CONFIG) as emulator:
        tenants = write_tenants_file(tmp / "tenants.yaml", emulator.base_url)
        assert materialize_ledger(tenants, tmp / "clean", FAMILY, run_config=run_config(1)).success
    return {
        "content": query(tmp / "clean", CONTENT),
        "digests": ledger_digests(tmp / "clean", business_only=True),
    }


# --- the windows themselves -----------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 3, 7, 16, 400])
@pytest.mark.parametrize(
    "bounds", [(None, None), (date(2025, 1, 1), None), (None, date(2025, 3, 1)),
               (date(2024, 12, 30), date(2025, 2, 2))],
)  # fmt: skip
def test_windows_cover_every_day_exactly_once(count: int, bounds: tuple) -> None:
    min_date, max_date = bounds
    first, last = date(2024, 12, 1), date(2025, 2, 28)
    windows = plan_windows(
        count, first_date=first, last_date=last, min_date=min_date, max_date=max_date
    )
    assert 1 <= len(windows) <= count
    # Open sides stay open: a row outside Powens' announced range is still read.
    assert windows[-1].min_date == min_date and windows[0].max_date == max_date
    probe_days = [first - timedelta(days=40) + timedelta(days=i) for i in range(200)]
    for day in probe_days:
        inside = [
            w
            for w in windows
            if (w.min_date is None or w.min_date <= day)
            and (w.max_date is None or day <= w.max_date)
        ]
        wanted = (min_date is None or min_date <= day) and (max_date is None or day <= max_date)
        assert len(inside) == (1 if wanted else 0), day


def test_one_window_when_the_span_is_unknown_or_a_single_day() -> None:
    assert len(plan_windows(8, first_date=None, last_date=None)) == 1
    one_day = date(2025, 5, 1)
    assert len(plan_windows(8, first_date=one_day, last_date=one_day)) == 1


def _page(
    records: list[PowensTransaction], total: int | None, *, more: bool = True, span=None
) -> TransactionPage:
    first, last = span or (date(2020, 1, 1), date(2026, 5, 29))
    return TransactionPage(records, [], total, None, more, first, last)


def _tx(last_update: datetime, tx_id: int = 1) -> PowensTransaction:
    from pfo_pipeline.powens.transaction_parsing import parse_transaction

    return parse_transaction(
        {"id": tx_id, "id_account": 1, "date": "2026-01-01", "value": 1.0,
         "last_update": last_update.strftime("%Y-%m-%d %H:%M:%S")}
    )  # fmt: skip


def test_a_chain_reports_every_sign_that_the_listing_moved() -> None:
    """Behaviour changed with issue 25: any sign of a move counts (a grown `total` too), since
    a row Powens inserted while the chain paged may carry a `last_update` from hours before."""
    start = datetime(2026, 5, 29, 8, 0, 0)
    old, changed = _tx(start - timedelta(days=3)), _tx(start + timedelta(minutes=1))
    chain = ChainWatch(start, limit=1)
    # First page: nothing to compare with yet (its rows are not "after the first request").
    assert chain.see(_page([changed], 300), after_first_request=False) == []
    assert "total went from 300 to 301" in chain.see(_page([old], 301), after_first_request=True)[0]
    assert "301 to 300" in chain.see(_page([old], 300), after_first_request=True)[0]
    assert chain.see(_page([old], 300), after_first_request=True) == []  # stable again
    moved = ChainWatch(start, limit=1)
    moved.see(_page([old], 500), after_first_request=False)
    # A row changed after the load began reached the unread part.
    assert (
        "changed after the load began"
        in moved.see(_page([changed], 500), after_first_request=True)[0]
    )
    dated = ChainWatch(start, limit=1)
    dated.see(_page([old], None), after_first_request=False)
    assert (
        "first_date/last_date"
        in dated.see(
            _page([old], None, span=(date(2019, 1, 1), date(2026, 5, 29))), after_first_request=True
        )[0]
    )
    short = ChainWatch(start, limit=2)
    assert (
        "a page of 1 rows (limit 2) before the end"
        in short.see(_page([old], None), after_first_request=False)[0]
    )
    assert short.see(_page([old], None, more=False), after_first_request=True) == []


def test_one_429_pauses_every_caller_of_the_client() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    backoff = SharedBackoff(clock=lambda: now[0], sleep=sleep)
    backoff.wait()
    assert slept == []
    backoff.pause(2.0)
    backoff.pause(0.5)  # a shorter pause never shortens the one in force
    backoff.wait()
    assert slept == [2.0] and now[0] == 102.0 and backoff.pauses == 2


# --- against the emulator ---------------------------------------------------------------------


def fetched(fetch: TransactionFetch) -> list[int]:
    return [r.id for batch in fetch.batches(250) for r in batch.records]


def test_the_windows_union_is_the_single_chain_result(family) -> None:
    emulator, _ = family
    with make_client(emulator) as client:
        single = fetched(TransactionFetch(client, limit=100, concurrency=1))
        windowed_fetch = TransactionFetch(client, limit=100, concurrency=4)
        windowed = fetched(windowed_fetch)
        backfill = TransactionFetch(
            client, limit=100, concurrency=3, min_date=date(2025, 1, 1), max_date=date(2025, 12, 31)
        )
        backfilled = fetched(backfill)
        backfill_single = fetched(
            TransactionFetch(
                client,
                limit=100,
                concurrency=1,
                min_date=date(2025, 1, 1),
                max_date=date(2025, 12, 31),
            )
        )
    assert len(windowed_fetch.windows) == 16  # 4 chains x 4 windows each
    assert len(backfill.windows) == min(3 * 4, -(-len(backfill_single) // 100))
    assert Counter(windowed) == Counter(single) and len(single) == len(set(single))
    assert Counter(backfilled) == Counter(backfill_single) and backfilled
    # Rows dated exactly on window boundaries exist, and each was read once.
    world = emulator.state
    days = {int(i): int(d) for i, d in zip(world.rows.id, world.rows.day, strict=True)}
    starts = {_day(w.min_date) for w in windowed_fetch.windows if w.min_date}
    ends = {_day(w.max_date) for w in windowed_fetch.windows if w.max_date}
    assert sum(days[i] in starts for i in windowed) > 0
    assert sum(days[i] in ends for i in windowed) > 0


def test_a_change_between_the_first_page_and_the_windows_is_seen(family) -> None:
    """Powens imports backdated rows just after the listing's first page (the second listing it
    serves): every window then reads the grown listing throughout, so only the windows' totals,
    added up against the first page's, show the move. Without that sum this went unseen in about
    one run in eight of the converging test (test_backdated_changes)."""
    emulator, _ = family
    emulator.set_faults(FaultConfig(backdated_import_rows=3, backdated_import_s=3 * 3600))
    with make_client(emulator) as client:
        moved = TransactionFetch(client, limit=100, concurrency=4)
        read = fetched(moved)
    assert len(moved.windows) == 16 and len(read) == len(set(read))
    added_up = [r for r in moved.shift_reasons if r.startswith("the date windows hold")]
    assert added_up == [
        f"the date windows hold {moved.total + 3} rows, the listing's first page announced "
        f"{moved.total}"
    ]
    emulator.set_faults(FaultConfig())
    with make_client(emulator) as client:
        still = TransactionFetch(client, limit=100, concurrency=4)
        fetched(still)
    assert not still.shift_reasons  # an unchanged listing adds up


def test_a_windowed_full_sync_equals_a_single_chain_one(family, clean_start, tmp_path) -> None:
    _emulator, tenants = family
    windowed = tmp_path / "windowed"
    result = materialize_ledger(tenants, windowed, FAMILY, run_config=run_config(4))
    assert result.success
    assert query(windowed, CONTENT) == clean_start["content"]
    assert ledger_digests(windowed, business_only=True) == clean_start["digests"]
    metadata = result.asset_materializations_for_node("bank_transactions")[0].metadata
    assert not metadata["cursor_held"].value


class _MovesARowMidSync:
    """The real client; once the newest window's chain is read, Powens books a pending row of
    the oldest window (not read yet): with today's date (the top of the listing, a window already
    read), or `days_ago` back into that window but past its first page, stamped two hours before
    the load began (an import's stamp, issue 25), or 900 days back (a window not read yet)."""

    def __init__(self, client: PowensClient, world, row: int, *, move: str) -> None:
        self._client, self._world, self._row, self._move_kind = client, world, row, move
        self._newest_done = threading.Event()
        self.started = world.now
        self.moved = False

    def iter_transaction_pages(self, **kwargs):
        newest = kwargs.get("min_date") is not None and kwargs.get("max_date") is None
        if kwargs.get("max_date") is not None and not self._newest_done.wait(timeout=30):
            raise AssertionError("the newest window never finished")
        yield from self._client.iter_transaction_pages(**kwargs)
        if newest and not self.moved:
            self._move()
            self._newest_done.set()

    def _move(self) -> None:
        world = self._world
        with world.lock:
            world.now += timedelta(minutes=1)
            r, i, today = world.rows, self._row, _day(world.now.date())
            r.coming[i] = False
            if self._move_kind == "into-read-window":
                r.day[i], r.last_update[i] = today, _ts(world.now)
            elif self._move_kind == "into-read-window-backdated":
                r.day[i], r.last_update[i] = today - 60, _ts(self.started - timedelta(hours=2))
            else:
                r.day[i], r.last_update[i] = r.day[i] - 900, _ts(world.now)
            world.version += 1
        self.moved = True

    def __getattr__(self, name: str):
        return getattr(self._client, name)


@pytest.mark.parametrize(
    "move", ["into-read-window", "into-read-window-backdated", "into-unread-window"]
)
def test_a_row_moving_across_windows_mid_sync_lands_by_the_next_sync(
    family, tmp_path, move: str
) -> None:
    """Into a window already read: this load misses it, but the first page read again shows it,
    so the cursor holds. From the newest window (read) into the oldest (unread): read twice, two
    versions, the cursor holds. The next sync lands it."""
    emulator, tenants = family
    world = emulator.state
    ledger = tmp_path / "ledger"
    assert materialize_ledger(tenants, ledger, FAMILY, assets=("bank_accounts",)).success
    with world.lock:
        r = world.rows
        mine = np.isin(r.account, world.user_account_ids(1)) & (r.deleted < 0)
        today = _day(world.now.date())
        into_read = move.startswith("into-read")
        pick = (r.day < today - 700) if into_read else (r.day >= today - 1)
        row = int(np.flatnonzero(mine & pick)[0])
        r.coming[row] = True  # pending since before the sync
        world.version += 1
    moved_id = int(world.rows.id[row])
    conn = open_ledger(ledger)
    try:
        with make_client(emulator) as client:
            mover = _MovesARowMidSync(client, world, row, move=move)
            first = sync_transactions(
                conn,
                mover,
                new_context(FAMILY, CONNECTION, 1),
                TransactionsSyncOptions(page_size=100, overlap=timedelta(0)),
            )
            assert mover.moved
            stored = conn.execute(
                "SELECT status FROM ledger.bank_transactions WHERE external_id = ?", [str(moved_id)]
            ).fetchall()
            # Either way the listing moved under the load, and it says so: into a window already
            # read, the first page read again after the last one shows the row on top (issue 25:
            # its `last_update` may be hours old, so no timestamp rule could catch it); into an
            # unread one, it comes twice. The cursor stays where the load began (none: a first
            # sync), so the next sync reads everything again.
            assert first.stats.cursor_held and first.cursor_after is None
            if into_read:
                assert stored == []  # left the oldest window before it was read
                # Each window's first page, read again after the last page, shows it: on top of
                # the listing, or (past the first page) by its window's grown `total`.
                assert "first page read again" in "; ".join(first.stats.shift_reasons)
            else:
                assert stored == [("booked",)]
            second = sync_transactions(
                conn,
                client,
                new_context(FAMILY, CONNECTION, 1),
                TransactionsSyncOptions(page_size=100, overlap=timedelta(0)),
            )
            assert second.mode == "full"
    finally:
        conn.close()
    assert_ledger_matches_emulator(ledger, emulator)
    clean = tmp_path / "clean"
    assert materialize_ledger(
        tenants, clean, FAMILY, assets=RECORDS_COMPARED, run_config=run_config(1)
    ).success
    assert query(ledger, CONTENT) == query(clean, CONTENT)


@pytest.mark.parametrize("faults", [{}, FAULT_MIX], ids=["churn", "churn+fault-mix"])
def test_windowed_syncs_while_powens_changes_converge_after_one_more(
    family, tmp_path, faults
) -> None:
    emulator, tenants = family
    ledger = tmp_path / "ledger"
    config = run_config(4, overlap_minutes=0)
    assert materialize_ledger(tenants, ledger, FAMILY, assets=("bank_accounts",)).success
    emulator.set_faults(FaultConfig(churn_per_page=1, **faults))
    result = materialize_ledger(
        tenants, ledger, FAMILY, assets=("bank_transactions",), run_config=config, max_attempts=12
    )
    assert result.success and emulator.state.churned >= 8
    emulator.advance(days=30)  # then an incremental read of several pages, still churning
    assert materialize_ledger(
        tenants, ledger, FAMILY, assets=("bank_accounts", "bank_transactions"), run_config=config,
        max_attempts=12,
    ).success  # fmt: skip
    emulator.set_faults(FaultConfig(**faults))
    assert materialize_ledger(
        tenants, ledger, FAMILY, assets=("bank_accounts", "bank_transactions"), run_config=config,
        max_attempts=12,
    ).success  # fmt: skip
    emulator.set_faults(FaultConfig())
    assert_ledger_matches_emulator(ledger, emulator)
    clean = tmp_path / "clean"
    assert materialize_ledger(
        tenants, clean, FAMILY, assets=RECORDS_COMPARED, run_config=run_config(1)
    ).success
    assert query(ledger, CONTENT) == query(clean, CONTENT)


def test_faults_at_ten_percent_across_chains_end_in_the_clean_ledger(
    family, clean_start, tmp_path
) -> None:
    emulator, tenants = family
    faulty = tmp_path / "faulty"
    emulator.set_faults(
        FaultConfig(
            rate_429=0.1, retry_after_s=0.01, rate_503=0.1, rate_slow=0.1, slow_s=1.0,
            rate_token_expiry=0.1, seed=31,
        )
    )  # fmt: skip
    try:
        result = materialize_ledger(
            tenants, faulty, FAMILY, run_config=run_config(4), timeout_s=0.5, max_attempts=12
        )
    finally:
        emulator.set_faults(FaultConfig())
    assert result.success
    assert (
        result.asset_materializations_for_node("bank_transactions")[0]
        .metadata["powens_retries"]
        .value
        > 0
    )
    assert ledger_digests(faulty, business_only=True) == clean_start["digests"]


def test_a_429_storm_pauses_all_chains_and_loses_nothing(family, tmp_path) -> None:
    emulator, _ = family
    with make_client(emulator) as client:
        expected = Counter(fetched(TransactionFetch(client, limit=100, concurrency=1)))
    emulator.set_faults(FaultConfig(rate_429=0.3, retry_after_s=0.02, seed=8))
    try:
        with make_client(emulator, max_attempts=12) as client:
            ids = fetched(TransactionFetch(client, limit=100, concurrency=4))
            assert client.backoff_pauses > 0 and client.retries > 0
    finally:
        emulator.set_faults(FaultConfig())
    assert Counter(ids) == expected


class _OneChainRefused:
    """The real client; the chain of one window asks Powens for pages it refuses (400)."""

    def __init__(self, client: PowensClient) -> None:
        self._client = client

    def iter_transaction_pages(self, **kwargs):
        if kwargs.get("min_date") is not None and kwargs.get("max_date") is not None:
            kwargs["limit"] = 5000
        return self._client.iter_transaction_pages(**kwargs)

    def __getattr__(self, name: str):
        return getattr(self._client, name)


def test_a_failing_chain_stops_all_and_commits_nothing(family, tmp_path) -> None:
    emulator, tenants = family
    ledger = tmp_path / "ledger"
    assert materialize_ledger(tenants, ledger, FAMILY, assets=("bank_accounts",)).success
    conn = open_ledger(ledger)
    try:
        with make_client(emulator) as client, pytest.raises(PowensRequestError) as info:
            sync_transactions(
                conn,
                _OneChainRefused(client),
                new_context(FAMILY, CONNECTION, 1),
                TransactionsSyncOptions(page_size=100),
            )
    finally:
        conn.close()
    message = str(info.value)
    assert message.startswith("Powens list transactions dated 20") and "status=400" in message
    for thread in threading.enumerate():
        if thread.name.startswith("powens-chain-"):
            thread.join(timeout=10)
            assert not thread.is_alive()
    assert query(ledger, "SELECT count(*) FROM ledger.bank_transactions")[0][0] == 0
    assert query(ledger, "SELECT count(*) FROM ledger.sync_cursors")[0][0] == 0
    loads = query(ledger, "SELECT status, error FROM ledger.loads WHERE stream = 'transactions'")
    assert loads == [("failed", message)]


def test_a_killed_windowed_sync_reruns_to_the_same_ledger(family, clean_start, tmp_path) -> None:
    _emulator, tenants = family
    killed = tmp_path / "killed"
    assert materialize_ledger(tenants, killed, FAMILY, assets=("bank_accounts",)).success
    script = tmp_path / "killed_sync.py"
    script.write_text(
        KILLED_SYNC.replace("batch_rows=400", "batch_rows=200, page_size=100, concurrency=4")
    )
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tenants), str(killed), "between-batches"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("BATCH 2"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert query(killed, "SELECT count(*) FROM ledger.bank_transactions")[0][0] == 0
    assert materialize_ledger(tenants, killed, FAMILY, run_config=run_config(4)).success
    assert ledger_digests(killed, business_only=True) == clean_start["digests"]

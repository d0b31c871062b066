"""How a transactions load reads Powens: one `_links.next` chain, or several over date windows
fetched side by side, and the pages grouped into batches for mapping and validation.

The first page decides. When it is the whole answer (the usual incremental sync) nothing else is
asked. Whether the chain goes on is the page's own verdict (`has_next`: a `_links.next`, or a
full page when Powens pages by `offset`), so both list shapes split the same way. When there is
more and concurrency allows, the read is split into date windows (`date_windows`, which also
argues why their union is the single chain's result) whose chains run in up to `concurrency`
threads; a bounded queue keeps memory flat whatever Powens' speed. A 429 on
any chain pauses them all (the client's shared back-off); a failure in one chain stops the others
and is raised, naming the call, so the load commits nothing.

The thread layers are performance machinery; what each buys (a 100,000-row full sync with the
emulator answering each page 250 ms late, as Powens does; 2026-12-07): one chain 29.1 s, one
chain reading 16 pages ahead in a thread while a batch is mapped 28.2 s (`powens.pagination.
prefetch`), four chains over date windows 10.6 s (`_concurrent`). Without latency they buy
nothing on 2 cores (21.7-22.7 s for a million rows: the emulator and the sync share them).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime

from pfo_pipeline.operations.date_windows import DateWindow, plan_windows
from pfo_pipeline.operations.listing_watch import ChainWatch, ListingSignature
from pfo_pipeline.powens.client import PAGE_LIMIT, PREFETCH_PAGES, PowensClient
from pfo_pipeline.powens.models import PowensTransaction
from pfo_pipeline.powens.pagination import prefetch
from pfo_pipeline.powens.transaction_pages import RejectedRecord, TransactionPage

DEFAULT_FETCH_CONCURRENCY = 4
# Windows per concurrent chain: small enough windows that one dense stretch of history does not
# leave the other threads idle, few enough that each still spans several pages.
WINDOWS_PER_CHAIN = 4
_CHAIN_DONE = object()


@dataclass(slots=True)
class TransactionBatch:
    """Several pages gathered so mapping and validation run once per batch, not per page."""

    records: list[PowensTransaction] = field(default_factory=list)
    rejects: list[RejectedRecord] = field(default_factory=list)
    pages: int = 0
    # The read's size as Powens announced it (for progress messages).
    total: int | None = None
    first_server_time: datetime | None = None
    # Why these pages show Powens' listing moved while it was read (`listing_watch`).
    shift_reasons: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records) + len(self.rejects)


class TransactionFetch:
    """One load's read of `GET /users/{id}/transactions`, deleted rows included.

    After the last page, when the load read more than one, each chain's first page is asked
    again: if one changed, the listing moved during the load (`listing_watch`); `shift_reasons`
    then says so, for the stage's cursor rule, once `batches()` is exhausted.
    """

    def __init__(
        self,
        client: PowensClient,
        *,
        last_update: datetime | None = None,
        min_date: date | None = None,
        max_date: date | None = None,
        limit: int = PAGE_LIMIT,
        concurrency: int = DEFAULT_FETCH_CONCURRENCY,
        read_ahead: int = PREFETCH_PAGES,
    ) -> None:
        self.client = client
        self.last_update = last_update
        self.min_date = min_date
        self.max_date = max_date
        self.limit = limit
        self.concurrency = max(1, concurrency)
        self.read_ahead = max(1, read_ahead)
        self.windows: list[DateWindow] = []
        self.started_by_powens: datetime | None = None
        self.total: int | None = None
        self.pages_read = 0
        # Signs the listing moved that no batch carries (the first page read again at the end).
        self.shift_reasons: list[str] = []
        self._firsts: dict[int, ListingSignature] = {}  # each chain's first page, as read

    def batches(self, batch_rows: int) -> Iterator[TransactionBatch]:
        """Pages grouped into batches of about `batch_rows` rows; memory stays bounded."""
        watches: dict[int, ChainWatch] = {}
        batch = TransactionBatch()
        first = True
        for chain, page in self.pages():
            watch = watches.get(chain)
            if watch is None:
                watch = watches[chain] = ChainWatch(self.started_by_powens, self.limit)
            batch.shift_reasons += watch.see(page, after_first_request=self.pages_read > 1)
            if not batch.pages:
                # The first batch carries the load's first clock: the cursor never passes it.
                batch.first_server_time = self.started_by_powens if first else page.server_time
                first = False
            batch.records.extend(page.records)
            batch.rejects.extend(page.rejects)
            batch.pages += 1
            # A window's `total` is its own; the load's size is the first page's.
            batch.total = self.total if self.windows else page.total
            if len(batch) >= batch_rows:
                yield batch
                batch = TransactionBatch()
        if batch.pages:
            yield batch

    def pages(self) -> Iterator[tuple[int, TransactionPage]]:
        """(chain number, page) in the order served; one chain unless the first page shows
        more to read and concurrency allows windows. Then each chain's first page is read again
        (`_read_first_pages_again`)."""
        yield from self._pages()
        self._windows_add_up()
        if self.pages_read > 1:
            self._read_first_pages_again()

    def _windows_add_up(self) -> None:
        """The date windows split the first page's listing without gap or overlap, so their
        first pages' `total`s add up to its `total`, unless the listing changed between that
        page and a window's first read. No window can see such a change on its own (it reads
        the changed listing throughout), and no later read of its first page shows it: a
        backdated import just after the first page went unseen this way, once in a few runs."""
        if not self.windows or self.total is None:
            return
        totals = [self._firsts[n].total for n in range(len(self.windows)) if n in self._firsts]
        if len(totals) < len(self.windows) or None in totals:
            return  # a window without a page or a total: nothing to add up
        held = sum(t for t in totals if t is not None)
        if held != self.total:
            self.shift_reasons.append(
                f"the date windows hold {held} rows, the listing's first page announced "
                f"{self.total}"
            )

    def _pages(self) -> Iterator[tuple[int, TransactionPage]]:
        whole = DateWindow(self.min_date, self.max_date)
        if self.concurrency == 1:
            for page in self._chain(whole, self.read_ahead):
                self._note(page, 0)
                yield 0, page
            return
        chain = self._chain(whole, read_ahead=0)
        probe = next(chain, None)
        if probe is None:
            return
        self._note(probe, 0)
        windows = self._plan(probe) if probe.has_next else []
        if len(windows) < 2:
            yield 0, probe
            for page in prefetch(chain, depth=self.read_ahead):
                self._note(page, 0)
                yield 0, page
            return
        chain.close()  # its rows are read again, window by window
        self.windows = windows
        self._firsts.clear()  # the windows' own first pages count from here
        for number, page in self._concurrent(windows):
            self._note(page, number)
            yield number, page

    def _note(self, page: TransactionPage, chain: int) -> None:
        self.pages_read += 1
        if chain not in self._firsts:
            self._firsts[chain] = ListingSignature.of(page)
        if self.pages_read == 1:
            self.started_by_powens = page.server_time
            self.total = page.total

    def _read_first_pages_again(self) -> None:
        """Each chain's first page, asked again after the last page: a difference means the
        listing moved during the load (`listing_watch`). With date windows this also catches a
        row that moved into a window already read (its `total` grew), which no page served."""
        windows = self.windows or [DateWindow(self.min_date, self.max_date)]

        def first_page(window: DateWindow) -> ListingSignature:
            again = self._chain(window, read_ahead=0)
            try:
                return ListingSignature.of(next(again, None))
            finally:
                again.close()

        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(windows))) as pool:
            later = list(pool.map(first_page, windows))
        for number, signature in enumerate(later):
            before = self._firsts.get(number, ListingSignature.of(None))
            self.shift_reasons += [
                reason + (f" (date window {number + 1})" if self.windows else "")
                for reason in before.differences(signature)
            ]

    def _plan(self, probe: TransactionPage) -> list[DateWindow]:
        pages = -(-probe.total // self.limit) if probe.total else WINDOWS_PER_CHAIN
        return plan_windows(
            min(self.concurrency * WINDOWS_PER_CHAIN, pages),
            first_date=probe.first_date,
            last_date=probe.last_date,
            min_date=self.min_date,
            max_date=self.max_date,
        )

    def _chain(self, window: DateWindow, read_ahead: int) -> Iterator[TransactionPage]:
        return self.client.iter_transaction_pages(
            last_update=self.last_update,
            min_date=window.min_date,
            max_date=window.max_date,
            include_deleted=True,
            limit=self.limit,
            read_ahead=read_ahead,
        )

    def _concurrent(self, windows: list[DateWindow]) -> Iterator[tuple[int, TransactionPage]]:
        """Every window's chain, up to `concurrency` at a time, through one bounded queue."""
        todo: queue.SimpleQueue[tuple[int, DateWindow]] = queue.SimpleQueue()
        for number, window in enumerate(windows):
            todo.put((number, window))
        served: queue.Queue = queue.Queue(maxsize=self.read_ahead)
        stop = threading.Event()
        failures: list[BaseException] = []

        def put(item: object) -> bool:
            while not stop.is_set():
                try:
                    served.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def run_chains() -> None:
            try:
                while not stop.is_set():
                    try:
                        number, window = todo.get_nowait()
                    except queue.Empty:
                        return
                    chain = self._chain(window, read_ahead=0)
                    try:
                        for page in chain:
                            if not put((number, page)):
                                return
                    finally:
                        chain.close()
            except BaseException as exc:
                failures.append(exc)
                stop.set()
            finally:
                put(_CHAIN_DONE)

        workers = [
            threading.Thread(target=run_chains, name=f"powens-chain-{n}", daemon=True)
            for n in range(min(self.concurrency, len(windows)))
        ]
        for worker in workers:
            worker.start()
        try:
            finished = 0
            while finished < len(workers):
                if failures:
                    raise failures[0]
                try:
                    item = served.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is _CHAIN_DONE:
                    finished += 1
                    continue
                yield item  # type: ignore[misc]
            if failures:
                raise failures[0]
        finally:
            stop.set()
            for worker in workers:
                worker.join(timeout=1)

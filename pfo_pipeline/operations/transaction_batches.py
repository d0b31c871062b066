"""One fetched batch of Powens transactions into the load's stage: the newest copy of each row,
pending rows kept or not, rows of accounts the ledger does not know held back, mapped,
categorised and validated once per batch; what the cursor rule needs is noted on the way.

Mapping is Python; validating and staging run mostly in DuckDB and Arrow, which let go of the
GIL. `BatchStager` runs the second half on a thread of its own so it overlaps the next batch's
mapping: a million rows through `dagster asset materialize` took 34.5 s with it on the mapping
thread, 31.0 s beside it (2026-12-07; docs/architecture.md, performance seams).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType

import pandas as pd

from pfo_pipeline.categoriser import categorise_frame
from pfo_pipeline.ledger.records import BankTransactionRecord
from pfo_pipeline.ledger.transaction_mapping import map_transactions
from pfo_pipeline.ledger.transactions_stage import TransactionStage
from pfo_pipeline.ledger.types import FAULT_HELD_BACK, FAULT_RECORD, AccountRef, Reject
from pfo_pipeline.ledger.validation import validate_batch
from pfo_pipeline.operations.transaction_fetch import TransactionBatch
from pfo_pipeline.powens.models import PowensTransaction


@dataclass(frozen=True)
class MappedBatch:
    """A batch mapped and categorised, not yet validated: what `BatchStager` takes."""

    frame: pd.DataFrame
    rejects: list[Reject]
    raw_rows: int


def stage_mapped(stage: TransactionStage, mapped: MappedBatch) -> None:
    """Validate a mapped batch and add it, with its rejects, to the stage."""
    valid, invalid = validate_batch(BankTransactionRecord, mapped.frame, stage.batch_conn)
    stage.add(valid, mapped.rejects + invalid, raw_rows=mapped.raw_rows)


def map_batch(
    stage: TransactionStage,
    batch: TransactionBatch,
    refs: dict[int, AccountRef],
    *,
    include_pending: bool,
) -> MappedBatch:
    """Map and categorise one batch, noting what the cursor rule needs (no lake access)."""
    records, duplicates, moved = newest_copies(batch.records)
    # Each chain's `total`s and dates were read by its `ChainWatch`; the stage gets the verdict.
    stage.note_pages(batch.first_server_time, duplicates, moved)
    stage.note_shift(batch.shift_reasons)
    if not include_pending:
        records = [r for r in records if not r.coming or r.deleted is not None]
    frame, rejects = map_transactions(records, stage.ctx, refs, categorise_frame)
    stage.note_held_back(
        [r.last_update for r in records if r.id_account not in refs]  # rejected as held back
    )
    # A null `value` is an incomplete row, not a malformed one: held back and read again.
    rejects += [
        Reject(r.external_id, (r.reason,), r.raw, FAULT_HELD_BACK if r.held else FAULT_RECORD)
        for r in batch.rejects
    ]
    stage.note_held_back([r.last_update for r in batch.rejects if r.held])
    stage.note_watermark(max((r.last_update for r in records if r.last_update), default=None))
    return MappedBatch(frame, rejects, len(batch))


class BatchStager:
    """Validates and stages mapped batches, in order, on one worker thread (see the module's
    docstring). At most one batch waits while another is mapped, so memory stays a batch or
    two. `on_staged(n)` runs on the caller's thread once batch n is in the stage; a failure is
    raised there at the next call. The worker uses the stage's batch connection
    (`TransactionStage.batch_conn`), so the caller keeps the lake's own (an accounts sync
    mid-load); `drain()` returns once every batch is staged, before the commit."""

    def __init__(self, stage: TransactionStage, on_staged: Callable[[int], None]) -> None:
        self._stage = stage
        self._on_staged = on_staged
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage-batches")
        self._pending: deque[tuple[int, Future[None]]] = deque()

    def submit(self, number: int, mapped: MappedBatch) -> None:
        self._pending.append((number, self._worker.submit(stage_mapped, self._stage, mapped)))
        while len(self._pending) > 1:
            self._settle()

    def drain(self) -> None:
        """Wait until every submitted batch is staged."""
        while self._pending:
            self._settle()

    def _settle(self) -> None:
        number, staged = self._pending.popleft()
        staged.result()
        self._on_staged(number)

    def __enter__(self) -> BatchStager:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        # On failure nothing more is staged; the running batch ends before the load fails.
        self._worker.shutdown(wait=True, cancel_futures=True)


def newest_copies(
    records: list[PowensTransaction],
) -> tuple[list[PowensTransaction], int, int]:
    """One copy per Powens id within a batch: the newest by `last_update`, on a tie the one
    served last (`ledger.stage_copies` does the same across batches).

    Offset pages repeat a row when Powens' data moves while we page; a repeat is not an error of
    the record. Returns the kept records (in served order), how many copies were dropped, and how
    many ids came as two different versions (the row itself moved while we paged).
    """
    if len({record.id for record in records}) == len(records):
        return records, 0, 0  # the usual case: no copies, nothing to choose
    newest: dict[int, int] = {}
    versions: set[int] = set()
    for position, record in enumerate(records):
        seen = newest.get(record.id)
        if seen is not None:
            earlier = records[seen]
            if earlier.last_update != record.last_update:
                versions.add(record.id)
            if earlier.last_update is not None and (
                record.last_update is None or record.last_update < earlier.last_update
            ):
                continue
        newest[record.id] = position
    if len(newest) == len(records):
        return records, 0, 0
    kept = sorted(newest.values())
    return [records[i] for i in kept], len(records) - len(kept), len(versions)

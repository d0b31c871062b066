"""One fetched batch of Powens transactions into the load's stage: the newest copy of each row,
pending rows kept or not, rows of accounts the ledger does not know held back, mapped,
categorised and validated once per batch; what the cursor rule needs is noted on the way."""

from __future__ import annotations

from pfo_pipeline.categoriser import categorise_frame
from pfo_pipeline.ledger.records import BankTransactionRecord
from pfo_pipeline.ledger.transaction_mapping import map_transactions
from pfo_pipeline.ledger.transactions_stage import TransactionStage
from pfo_pipeline.ledger.types import FAULT_HELD_BACK, FAULT_RECORD, AccountRef, Reject
from pfo_pipeline.ledger.validation import validate_batch
from pfo_pipeline.operations.transaction_fetch import TransactionBatch
from pfo_pipeline.powens.models import PowensTransaction


def stage_batch(
    stage: TransactionStage,
    batch: TransactionBatch,
    refs: dict[int, AccountRef],
    *,
    include_pending: bool,
) -> None:
    """Map, categorise and validate one batch, and add it (with its rejects) to the stage."""
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
    valid, invalid = validate_batch(BankTransactionRecord, frame)
    stage.note_watermark(max((r.last_update for r in records if r.last_update), default=None))
    stage.add(valid, rejects + invalid, raw_rows=len(batch))


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

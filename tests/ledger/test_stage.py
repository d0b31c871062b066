"""A load's stage keeps one row per Powens id: pages overlap when Powens' data moves while the
sync pages, so a load can hold several copies of a row, in one batch or across batches. The
copies are found by grouping the ids' hashes a slice of the hash range at a time (memory follows
the slice, not the load): whatever the number of slices, the newest copy wins, on a tie of
`last_update` the copy served last."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from pfo_pipeline.lake import migrations
from pfo_pipeline.ledger import stage_copies
from pfo_pipeline.ledger.columns import TRANSACTION_COLUMNS
from pfo_pipeline.ledger.transactions_commit import commit_transactions_load
from pfo_pipeline.ledger.transactions_stage import TransactionStage
from pfo_pipeline.ledger.types import SyncContext
from tests.conftest import open_ledger
from tests.ledger.test_incremental_derivations import LEDGER_CONTENT, TENANT, staged_rows

DAY = date(2026, 3, 10)
SEEN = datetime(2026, 3, 12, 8, 0)


def served(number: int, wording: str, updated: datetime) -> dict:
    """One copy of transaction `number` as Powens served it, told apart by its wording."""
    return {
        "id": f"txn_{number}",
        "account_id": "acc_a",
        "amount": Decimal(f"-{number}.00"),
        "date": DAY + timedelta(days=number % 7),
        "description": wording,
        "provider_updated_at": updated,
    }


# Three batches as a sync stages them: 40 ids, of which every third is served again in a later
# batch (newer, same `last_update`, or older than the copy already staged), and one id served
# three times.
BATCHES = [
    [served(n, "first", SEEN) for n in range(40)],
    [served(n, "newer", SEEN + timedelta(hours=1)) for n in range(0, 40, 3)]
    + [served(n, "older", SEEN - timedelta(hours=1)) for n in range(1, 40, 3)],
    [served(n, "tie, served last", SEEN) for n in range(2, 40, 3)]
    + [served(0, "newest", SEEN + timedelta(hours=2))],
]


def load(path: Path, slices_of: int) -> tuple[list[tuple], int, int]:
    """Commit the batches as one load with the ids grouped `slices_of` staged rows a slice:
    the ledger's content, the rows upserted and the copies merged."""
    conn = open_ledger(path)
    try:
        migrations.migrate(conn)
        stage = TransactionStage(conn, SyncContext(TENANT, "c", "1", "load_1"))
        for batch in BATCHES:
            stage.add(staged_rows(batch), [], raw_rows=len(batch))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(stage_copies, "HASH_GROUP_ROWS", slices_of)
            stats = commit_transactions_load(
                stage,
                datetime(2026, 6, 1, tzinfo=UTC),
                cursor_before=None,
                window=(None, None),
                incremental=False,
            )
        return conn.execute(LEDGER_CONTENT).fetchall(), stats.upserted, stats.duplicates
    finally:
        conn.close()


def test_copies_across_batches_make_one_row_whatever_the_slices(tmp_path: Path) -> None:
    """One slice or about twenty: the same rows land, the newest copy of each (fails if a slice
    is skipped or a tie goes to the copy served first)."""
    rows = sum(len(batch) for batch in BATCHES)
    whole, upserted, merged = load(tmp_path / "one_slice", slices_of=rows)
    assert upserted == 40 and merged == rows - 40
    wording = {row[0]: row[TRANSACTION_COLUMNS.index("description")] for row in whole}
    assert wording["txn_0"] == "newest"
    assert wording["txn_3"] == "newer"
    assert wording["txn_1"] == wording["txn_4"] == "first"  # the older copy loses
    assert wording["txn_2"] == wording["txn_5"] == "tie, served last"
    # About 20 slices of the hash range: every copy still meets its own in the same slice.
    assert load(tmp_path / "many_slices", slices_of=4) == (whole, upserted, merged)

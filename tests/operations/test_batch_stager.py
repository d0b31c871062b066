"""`BatchStager`: batches are staged in order on one worker thread, `on_staged(n)` runs on the
caller's thread only once batch n is staged, and a failure stops the staging and reaches the
caller."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest

from pfo_pipeline.operations import transaction_batches
from pfo_pipeline.operations.transaction_batches import BatchStager, MappedBatch


def mapped(number: int) -> MappedBatch:
    return MappedBatch(pd.DataFrame({"n": [number]}), [], raw_rows=1)


class Recorder:
    def __init__(self, fail_at: int | None = None) -> None:
        self.staged: list[int] = []
        self.threads: set[str] = set()
        self.fail_at = fail_at

    def stage(self, stage: object, batch: MappedBatch) -> None:
        number = int(batch.frame["n"].iloc[0])
        time.sleep(0.01 * (number % 3))  # uneven work: order must not follow speed
        if number == self.fail_at:
            raise RuntimeError(f"batch {number} broke")
        self.threads.add(threading.current_thread().name)
        self.staged.append(number)


def test_batches_are_staged_in_order_and_reported_once_staged(monkeypatch) -> None:
    recorder = Recorder()
    monkeypatch.setattr(transaction_batches, "stage_mapped", recorder.stage)
    reported: list[tuple[int, list[int], str]] = []

    def on_staged(number: int) -> None:
        reported.append((number, list(recorder.staged), threading.current_thread().name))

    with BatchStager(object(), on_staged) as stager:  # type: ignore[arg-type]
        for number in range(1, 8):
            stager.submit(number, mapped(number))
        stager.drain()
    assert recorder.staged == list(range(1, 8))
    assert [n for n, _, _ in reported] == list(range(1, 8))
    caller = threading.current_thread().name
    for number, staged_then, thread in reported:
        assert number in staged_then and thread == caller
    assert len(recorder.threads) == 1 and caller not in recorder.threads


def test_a_failed_batch_reaches_the_caller_and_stops_the_staging(monkeypatch) -> None:
    recorder = Recorder(fail_at=3)
    monkeypatch.setattr(transaction_batches, "stage_mapped", recorder.stage)
    reported: list[int] = []
    with pytest.raises(RuntimeError, match="batch 3 broke"):
        with BatchStager(object(), reported.append) as stager:  # type: ignore[arg-type]
            for number in range(1, 10):
                stager.submit(number, mapped(number))
            stager.drain()
    assert reported == [1, 2]
    # At most one batch after the broken one was in hand when the failure surfaced.
    assert recorder.staged[:2] == [1, 2] and len(recorder.staged) <= 3


def test_at_most_one_batch_waits_while_the_next_is_mapped(monkeypatch) -> None:
    """Memory stays a batch or two: `submit` returns only when the batch before the one it
    took is staged."""
    recorder = Recorder()
    monkeypatch.setattr(transaction_batches, "stage_mapped", recorder.stage)
    with BatchStager(object(), lambda n: None) as stager:  # type: ignore[arg-type]
        for number in range(1, 6):
            stager.submit(number, mapped(number))
            assert len(recorder.staged) >= number - 1
        stager.drain()
    assert len(recorder.staged) == 5

"""A long fetch hands freed memory back every `RELEASE_EVERY_BATCHES` batches (a 5M-row sync's
peak stayed at 1M's only so), and frees a batch's cycles after every batch."""

from __future__ import annotations

import gc
import weakref

from pfo_pipeline.operations import load_memory


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_freed_memory_is_handed_back_every_so_many_batches(monkeypatch) -> None:
    released: list[int] = []
    monkeypatch.setattr(load_memory, "release_freed_memory", lambda: released.append(1))
    every = load_memory.RELEASE_EVERY_BATCHES
    for number in range(1, 2 * every + 1):
        load_memory.collect_batch_garbage(number)
    assert len(released) == 2


def test_a_batch_s_cycles_die_with_the_batch_inside_a_load() -> None:
    before = gc.get_threshold()
    with load_memory.rare_collections():
        cycle = Cycle()
        gone: list[bool] = []
        weakref.finalize(cycle, gone.append, True)
        del cycle
        assert not gone  # rare passes: left alone until the batch ends
        load_memory.collect_batch_garbage(1)
        assert gone == [True]
    assert gc.get_threshold() == before  # the collector as it was

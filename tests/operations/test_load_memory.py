"""A long fetch hands freed memory back every `RELEASE_EVERY_BATCHES` batches (a 5M-row sync's
peak stayed at 1M's only so); inside a load the collector runs rarely, and is restored after."""

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
        load_memory.release_every_few_batches(number)
    assert len(released) == 2


def test_a_load_leaves_cycles_to_rare_passes_and_restores_the_collector() -> None:
    before = gc.get_threshold()
    with load_memory.rare_collections():
        assert gc.get_threshold()[0] == load_memory.YOUNG_THRESHOLD
        cycle = Cycle()
        gone: list[bool] = []
        weakref.finalize(cycle, gone.append, True)
        del cycle
        load_memory.release_every_few_batches(load_memory.RELEASE_EVERY_BATCHES)
        assert gone == [True]  # the periodic release collects too
    assert gc.get_threshold() == before  # the collector as it was

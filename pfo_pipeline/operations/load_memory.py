"""A big load's Python memory housekeeping: rare collector passes, and freed memory handed back
to the system before the commit. Two pieces of performance machinery behind one seam, each
with the figure it buys:

- **Collector freezing** (`rare_collections`): a transactions load creates millions of
  short-lived objects (parsed pages, records, mapped columns) that die by reference counting, yet
  every 700 allocations the collector runs, and its full passes walk every live object, the
  imported modules' included: ~6 s of CPU of a million-row sync, a fifth of it. Inside
  `rare_collections` the objects alive at entry are frozen (no pass walks them) and passes run
  only every `YOUNG_THRESHOLD` allocations. What little cyclic garbage a load makes is left to
  those passes: the one cycle that held real memory, httpx's between a response and its stream
  (every page's ~1 MB body), is broken as each page is read (`powens.responses.release`), so
  no pass after each batch is needed any more (one took ~20 ms a batch). Nested or concurrent
  loads share one pause; the last one out restores the collector as it was.
- **Memory trimming** (`release_freed_memory`): Python's and Arrow's allocators keep freed pages
  for reuse, so the commit's own peak would sit on top of the fetch's; handing them back first
  lowers a million-row full sync's peak from 578 to 518 MB (measured in process, 2026-12-07).
  Done every 16 batches of the fetch too, it keeps a 5M-row sync's peak at 1M's.
"""

from __future__ import annotations

import ctypes
import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pyarrow as pa

YOUNG_THRESHOLD = 50_000
RELEASE_EVERY_BATCHES = 16
_lock = threading.Lock()
_holders = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def rare_collections() -> Iterator[None]:
    """Run the body with the collector's passes made rare (see the module's docstring)."""
    global _holders, _saved
    with _lock:
        if _holders == 0:
            _saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(YOUNG_THRESHOLD, _saved[1], _saved[2])
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                gc.unfreeze()
                _saved = None


def release_every_few_batches(batch_number: int) -> None:
    """Every `RELEASE_EVERY_BATCHES` batches, hand freed memory back (`release_freed_memory`):
    without it the allocators' free lists grew over a long fetch, and a 5M-row sync through
    Dagster peaked at 614-619 MB against 1M's 577 (2026-12-07); with it (and the page cycle
    broken), 1M peaked at 513-514 MB and 5M at 521 MB in 12,000-row batches (2026-12-08)."""
    if batch_number % RELEASE_EVERY_BATCHES == 0:
        release_freed_memory()


def release_freed_memory() -> None:
    """Hand memory the load no longer uses back to the system before the commit (see the
    module's docstring). `malloc_trim` exists with glibc only; elsewhere this does less."""
    gc.collect()
    pa.default_memory_pool().release_unused()
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)

"""Whether Ctrl-C or SIGTERM came during a block, even where Dagster dropped it.

A run executed in-process (`dg.materialize`) captures SIGINT and SIGTERM and acts on one only at
its own checkpoints (user code); one that lands in Dagster's framework code between them is
dropped when the run ends, and the run goes on as if nothing came (measured: `pfo demo`
signalled a second into its first sync ran to the end and exited 0). Python writes every signal
it handles to the wakeup fd whatever handler is installed, so a command that runs several runs
reads it between them and stops (`pfo demo`).
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

INTERRUPTS = frozenset({signal.SIGINT, signal.SIGTERM})


@contextmanager
def interrupt_watch() -> Iterator[Callable[[], bool]]:
    """Yield a check: has SIGINT or SIGTERM arrived since the block began? (Outside the main
    thread, where no signal handler runs, it always answers no.)"""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    seen: set[int] = set()

    def interrupted() -> bool:
        try:
            while data := reader.recv(256):
                seen.update(data)
        except BlockingIOError:
            pass
        return bool(seen & INTERRUPTS)

    try:
        yield interrupted
    finally:
        signal.set_wakeup_fd(previous)
        reader.close()
        writer.close()

"""`interrupt_watch` sees Ctrl-C and SIGTERM even when the handler in force drops them (as an
in-process Dagster run does between its checkpoints), and nothing else."""

from __future__ import annotations

import subprocess
import sys

# Run in a process of its own: signals go to its main thread, where the handlers run.
SCRIPT = """
import os, signal
from pfo_pipeline.interrupt_watch import interrupt_watch

def dropped(signum, frame):  # what Dagster's capture does with a signal outside a checkpoint
    pass

for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
    signal.signal(signum, dropped)
answers = []
with interrupt_watch() as interrupted:
    answers.append(interrupted())
    os.kill(os.getpid(), signal.SIGUSR1)
    answers.append(interrupted())
    os.kill(os.getpid(), signal.SIG{name})
    answers.append(interrupted())
    answers.append(interrupted())  # stays seen
print(answers, signal.set_wakeup_fd(-1))
"""


def test_a_dropped_interrupt_is_still_seen() -> None:
    for name in ("INT", "TERM"):
        result = subprocess.run(
            [sys.executable, "-c", SCRIPT.replace("{name}", name)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        # No interrupt, a SIGUSR1 (not one), the interrupt, still seen; the wakeup fd restored.
        assert result.stdout.split() == ["[False,", "False,", "True,", "True]", "-1"], name

"""An analyst in a process of their own, reading the lake in a loop until a stop file appears:
`python -m tests.analyst CATALOG DATA_PATH STOP_FILE`, or `python -m tests.analyst STOP_FILE` for
the lake the environment names (`PFO_LAKE_CATALOG`, `PFO_LAKE_DATA_PATH`, and for S3 the AWS
variables). Prints `attempted failed torn last_rows`. Tests run it with `reading_analyst`.

A read is torn when it shows rows whose load is not committed as succeeded, or fewer rows than
the read before: half a load would show exactly that.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pfo_pipeline import lake

ROOT = Path(__file__).resolve().parents[1]

READ = (
    "SELECT (SELECT count(*) FROM ledger.bank_transactions), "
    "(SELECT count(*) FROM ledger.bank_transactions WHERE load_id NOT IN "
    " (SELECT load_id FROM ledger.loads WHERE status = 'succeeded'))"
)


def main(location: lake.LakeLocation, stop: str) -> None:
    attempted = failed = torn = last = 0
    while not os.path.exists(stop):
        attempted += 1
        try:
            conn = lake.connect(location, read_only=True)  # a cursor of one attached lake
            try:
                rows, orphans = conn.execute(READ).fetchall()[0]
            finally:
                conn.close()
            if orphans or rows < last:
                torn += 1
            last = rows
        except Exception as exc:
            failed += 1
            print("READ FAILED", type(exc).__name__, str(exc)[:300], file=sys.stderr, flush=True)
        if attempted == 1:
            Path(f"{stop}.reading").touch()  # tells `reading_analyst` the reads began
        time.sleep(0.2)  # an analyst re-running a query, not a busy loop eating a core
    print(attempted, failed, torn, last, flush=True)


@dataclass
class AnalystReads:
    """What the analyst saw, once `reading_analyst` has stopped them."""

    attempted: int = 0
    failed: int = 0
    torn: int = 0
    last_rows: int = 0
    errors: str = ""


@contextmanager
def reading_analyst(ledger: Path, tmp: Path) -> Iterator[AnalystReads]:
    """The analyst reads the lake in `ledger` in their own process for the whole block (started
    reading before the block runs); the yielded record is filled in when the block ends."""
    where = lake.LakeLocation.in_folder(ledger).resolved()
    stop, started = tmp / "analyst.stop", time.monotonic()
    analyst = subprocess.Popen(
        [sys.executable, "-m", "tests.analyst", where.catalog, where.data_path, str(stop)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    reads = AnalystReads()
    try:
        while not (tmp / "analyst.stop.reading").exists():  # their first read is done
            assert analyst.poll() is None, analyst.communicate()[1][-3000:]
            assert time.monotonic() - started < 120, "the analyst never read"
            time.sleep(0.05)
        yield reads
    finally:
        stop.write_text("")
        out, reads.errors = analyst.communicate(timeout=60)
    reads.attempted, reads.failed, reads.torn, reads.last_rows = (int(v) for v in out.split())


if __name__ == "__main__":
    if len(sys.argv) == 2:
        main(lake.LakeLocation.from_env(), sys.argv[1])
    else:
        main(lake.LakeLocation(sys.argv[1], sys.argv[2]), sys.argv[3])

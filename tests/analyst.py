"""An analyst in a process of their own, reading the lake in a loop until a stop file appears:
`python -m tests.analyst CATALOG DATA_PATH STOP_FILE`. Prints `attempted failed torn last_rows`.

A read is torn when it shows rows whose load is not committed as succeeded, or fewer rows than
the read before: half a load would show exactly that.
"""

from __future__ import annotations

import os
import sys
import time

from pfo_pipeline.ledger import lake

READ = (
    "SELECT (SELECT count(*) FROM ledger.bank_transactions), "
    "(SELECT count(*) FROM ledger.bank_transactions WHERE load_id NOT IN "
    " (SELECT load_id FROM ledger.loads WHERE status = 'succeeded'))"
)


def main(catalog: str, data_path: str, stop: str) -> None:
    location = lake.LakeLocation(catalog, data_path)
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
        time.sleep(0.2)  # an analyst re-running a query, not a busy loop eating a core
    print(attempted, failed, torn, last, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])

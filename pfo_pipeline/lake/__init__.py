"""The one door to the lake: a DuckLake (a catalog database plus Parquet data files) that every
schema (`ledger`, `staging`, `analytics`, `knowledge`, `telemetry`) lives in.

Nothing else in the package knows where the lake lives, attaches it, or creates a table in it.
Its modules, by concern:

- `location`: where it lives (`PFO_LAKE_CATALOG`, `PFO_LAKE_DATA_PATH`);
- `object_store`, `lake_files`: a data path on S3 (credentials from the AWS variables as a
  temporary DuckDB secret; the files through pyarrow's filesystems);
- `extensions`: the DuckDB database every lake connection starts from;
- `guard`: a missing catalog beside an earlier lake's files is an error, never a new lake;
- `attach`: `connect` / `open_lake` (a writer's first attach migrates: `migrations`);
- `transactions`: `run_transaction` (conflicts retried from a fresh snapshot), `one_snapshot`,
  `registered`, `one_thread`;
- `faults`: errors no retry can fix, named with what to do;
- `maintenance` (with `inlined_flush`, `orphan_files`), `forget` (text that must leave history);
- `scratch`, `scratch_folder`: a load's private local scratch database and files;
- `read_only`, `as_of`, `cli`: `pfo sql` (read-only, time travel) and `pfo ledger`.

The bank domain (`ledger`), the knowledge space (`knowledge`) and telemetry write their own
tables through `run_transaction` on a connection from here; only `migrations` holds DDL.
"""

from pfo_pipeline.lake.attach import connect, open_lake
from pfo_pipeline.lake.errors import LakeCommitConflict, LakeError, LakeMissing
from pfo_pipeline.lake.location import LakeLocation
from pfo_pipeline.lake.transactions import (
    LAKE,
    last_snapshot,
    one_snapshot,
    one_thread,
    registered,
    run_transaction,
)

__all__ = [
    "LAKE",
    "LakeCommitConflict",
    "LakeError",
    "LakeLocation",
    "LakeMissing",
    "connect",
    "last_snapshot",
    "one_snapshot",
    "one_thread",
    "open_lake",
    "registered",
    "run_transaction",
]

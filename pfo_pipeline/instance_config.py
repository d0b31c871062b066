"""The Dagster instance settings the project relies on, written into `$DAGSTER_HOME/dagster.yaml`.

    python -m pfo_pipeline.instance_config "$DAGSTER_HOME/dagster.yaml"

(`scripts/_setup.sh` runs it on every setup.) A missing file is written whole. In an existing
file, each setting the project owns is added when absent; a value the user set differently is
kept and named on stderr, so an old home gets the settings without losing anyone's choices.

Why each setting:
- `run_monitoring`: the daemon ends runs that never start or never finish cancelling, and (with
  `free_slots_after_run_end_seconds`) frees the pool slots of runs that ended badly. A run worker
  killed by SIGKILL or the OOM killer is marked failed by its code server; before this, its
  `lake` pool slot stayed taken for good and every later ledger step waited. The default
  run launcher cannot resume a run in a new worker: `max_resume_run_attempts: 0`.
- `concurrency.runs.tag_concurrency_limits`: one queued run per partition at a time, so a
  tenant's syncs never run side by side (the webhook sensor, a schedule and the UI may all ask);
  the next one waits in the queue. Runs that bypass the queue meet `operations/sync_lock.py`.
- `run_queue.dequeue_interval_seconds`: the daemon looks at the queue every second, not every five:
  a run launched from the UI waited up to 5 s before its worker started (the queue's other
  settings stay under `concurrency.runs`, where Dagster wants them).
- `concurrency.pools.default_limit`: the lake takes many writers; the limit only bounds
  contention on its catalog.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

HEADER = (
    "# Written by pfo-pipeline (python -m pfo_pipeline.instance_config): the settings the project\n"
    "# relies on. Edit freely: a value you change is kept (setup names it), a missing one is added.\n"
)
PROJECT_SETTINGS: dict[str, Any] = {
    "run_monitoring": {
        "enabled": True,
        "start_timeout_seconds": 180,
        "cancel_timeout_seconds": 180,
        "max_resume_run_attempts": 0,
        "poll_interval_seconds": 30,
        "free_slots_after_run_end_seconds": 30,
    },
    "concurrency": {
        "pools": {"default_limit": 4},
        "runs": {
            "tag_concurrency_limits": [
                {
                    "key": "dagster/partition",
                    "value": {"applyLimitPerUniqueValue": True},
                    "limit": 1,
                }
            ]
        },
    },
    "run_queue": {"dequeue_interval_seconds": 1},
    "telemetry": {"enabled": False},
    "nux": {"enabled": False},
}


def merge(
    existing: dict[str, Any], wanted: dict[str, Any], path: str = ""
) -> tuple[dict, list[str]]:
    """`existing` with every missing setting of `wanted` added; (merged, what differs)."""
    merged = dict(existing)
    differs: list[str] = []
    for key, value in wanted.items():
        where = f"{path}.{key}" if path else key
        if key not in merged or merged[key] is None:
            merged[key] = value
        elif isinstance(value, dict) and isinstance(merged[key], dict):
            merged[key], below = merge(merged[key], value, where)
            differs += below
        elif merged[key] != value:
            differs.append(f"{where} is {merged[key]!r} here (the project uses {value!r})")
    return merged, differs


def write_instance_config(path: Path) -> tuple[bool, list[str]]:
    """Write or complete the file; (whether it changed, the settings kept at another value)."""
    if path.exists():
        try:
            existing = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise SystemExit(f"{path}: not valid YAML ({exc}); fix or remove it") from None
        if not isinstance(existing, dict):
            raise SystemExit(f"{path}: expected a mapping of settings; fix or remove it")
    else:
        existing = {}
    wanted, differs = dict(PROJECT_SETTINGS), []
    if "run_coordinator" in existing:  # Dagster refuses `run_queue` beside it
        del wanted["run_queue"]
    # Dagster refuses a `concurrency.runs` block beside limits set by these: by hand, then.
    own_queue = existing.get("run_queue") or {}
    queue_elsewhere = [
        key
        for key, limits_here in (
            ("run_coordinator", "run_coordinator" in existing),
            ("run_queue", bool({"max_concurrent_runs", "tag_concurrency_limits"} & set(own_queue))),
        )
        if limits_here
    ]
    if queue_elsewhere:
        del wanted["concurrency"]
        differs.append(
            f"{queue_elsewhere[0]} is set here, so the project's run queue limit is not added: "
            "add tag_concurrency_limits [{key: dagster/partition, value: "
            "{applyLimitPerUniqueValue: true}, limit: 1}] to its settings"
        )
    merged, more = merge(existing, wanted)
    differs += more
    if merged == existing and path.exists():
        return False, differs
    if path.exists():
        path.with_name(path.name + ".bak").write_text(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + yaml.safe_dump(merged, sort_keys=False))
    return True, differs


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m pfo_pipeline.instance_config PATH/dagster.yaml", file=sys.stderr)
        return 2
    path = Path(argv[0])
    existed = path.exists()
    changed, differs = write_instance_config(path)
    if changed and existed:
        print(
            f"pfo setup: added the project's Dagster settings to {path} (run monitoring, "
            f"one run per partition; the previous file is {path.name}.bak)",
            file=sys.stderr,
        )
    for difference in differs:
        print(f"pfo setup: {path}: {difference}; kept as you set it", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

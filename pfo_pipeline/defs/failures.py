"""How a step fails when no retry can fix it: Dagster fails it on this attempt, whatever its
retry policy, with the real cause first (`operations.permanence` says which causes those are)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from pfo_pipeline.lake.faults import LakeFault
from pfo_pipeline.operations.permanence import permanent_cause


class NotRetryable(dg.Failure):
    """A failure no retry can fix; its description is the real cause (a lake fault already says
    which file and what to do)."""

    def __init__(self, what: str, exc: BaseException) -> None:
        cause = str(exc) if isinstance(exc, LakeFault) else f"{type(exc).__name__}: {exc}"
        super().__init__(
            description=f"{what}: {cause}"
            + ("" if isinstance(exc, LakeFault) else " (not retried: a retry cannot fix this)"),
            allow_retries=False,
        )


@contextmanager
def fail_fast_if_permanent(what: str) -> Iterator[None]:
    """Inside the block, an error no retry can fix becomes `NotRetryable`; any other error is
    left to the step's retry policy."""
    try:
        yield
    except dg.Failure:
        raise
    except Exception as exc:
        cause = permanent_cause(exc)
        if cause is None:
            raise
        raise NotRetryable(what, cause) from exc

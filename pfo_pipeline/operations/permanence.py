"""Which failures a retry cannot fix. A step retry minutes later only hides them: wrong or missing
credentials, a request Powens refuses, an unreachable Powens (its transport already tried again
within seconds: a wrong address or an outage), a bad tenants file, another sync of the tenant
running, and lake faults (a missing or truncated data file, a full disk, a permission error...,
recognised by `lake.faults` whatever DuckDB or the OS raised them as). A commit conflict with
another writer is the exception among lake errors: it is transient."""

from __future__ import annotations

from pfo_pipeline.lake import LakeCommitConflict, LakeError
from pfo_pipeline.lake.faults import lake_fault
from pfo_pipeline.operations.sync_lock import SyncAlreadyRunning
from pfo_pipeline.powens.errors import (
    PowensAuthError,
    PowensNotFoundError,
    PowensRequestError,
    PowensUnreachableError,
)
from pfo_pipeline.tenancy.config import TenantConfigError

PERMANENT_ERRORS = (
    PowensAuthError,
    PowensRequestError,
    PowensNotFoundError,
    PowensUnreachableError,
    TenantConfigError,
    SyncAlreadyRunning,
    LakeError,
)


def permanent_cause(exc: BaseException) -> BaseException | None:
    """What to report when a retry cannot fix `exc` (a lake fault says which file and what to
    do); None when a retry may help."""
    if isinstance(exc, LakeCommitConflict):
        return None
    fault = lake_fault(exc)
    if fault is not None:
        return fault
    return exc if isinstance(exc, PERMANENT_ERRORS) else None

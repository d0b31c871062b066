"""Errors of the lake that no retry can fix, told apart from those one can.

A commit conflict is retried (`lake.run_transaction`); a missing or truncated Parquet file (on
disk or in the bucket), credentials the object store refuses, a catalog that cannot be read or
written, a full disk, a file-size limit or a permission error
stay as they are however often the work is run again: they used to be retried by the steps'
retry policies for 19 to 62 seconds before the real message showed. `lake_fault` turns such an
error into a `LakeFault` whose first line names the file or table and what to do.
"""

from __future__ import annotations

import errno
import re

import duckdb

from pfo_pipeline.lake.errors import LakeError
from pfo_pipeline.lake.transactions import is_commit_conflict

# (pattern on DuckDB's message, what happened, what to do); the first group is the file.
_FILE_FAULTS = (
    (
        re.compile(r'Cannot open file "([^"]+)": No such file or directory'),
        "the lake's data file {file} is missing",
        "restore it (or the whole data path) from a backup; the catalog still lists it",
    ),
    (
        re.compile(
            r"(?:Invalid footer length provided for file|No magic bytes found at end of file) "
            r"'([^']+)'"
        ),
        "the lake's data file {file} is truncated or corrupt",
        "restore it (or the whole data path) from a backup",
    ),
    (
        re.compile(r"File '([^']+)' too small to be a Parquet file"),
        "the lake's data file {file} is truncated (too small to be a Parquet file)",
        "restore it (or the whole data path) from a backup",
    ),
    # A data path on S3: DuckDB's httpfs names the object's URL (never the credentials).
    (
        re.compile(r"HTTP \w+ error on '([^']+)' \(HTTP 404\)"),
        "the lake's data file {file} is missing from the bucket",
        "restore it (or the whole data path) from a backup; the catalog still lists it",
    ),
    (
        re.compile(
            r"(?:HTTP \w+ error on '([^']+)' \(HTTP 403\)|Unable to connect to URL (\S+?): "
            r"Forbidden \(HTTP code 403\))"
        ),
        "the object store refused the lake's credentials for {file}",
        "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) and the "
        "bucket's policy",
    ),
)
_DISK_FAULTS = (
    ("no space left on device", "the disk is full", "free space on it, then run again"),
    (
        "file too large",
        "a file reached the file-size limit (EFBIG)",
        "raise the limit (ulimit -f) or the file system's, then run again",
    ),
    (
        "disk quota exceeded",
        "the disk quota is used up",
        "free space or raise the quota, then run again",
    ),
    (
        "permission denied",
        "permission was denied",
        "give the pipeline's user read and write access to the lake's catalog and data path",
    ),
    (
        "read-only file system",
        "the file system is read-only",
        "mount it read-write, or point the lake elsewhere",
    ),
)
_CATALOG_FAULTS = (
    "disk i/o error",
    "database disk image is malformed",
    "file is not a database",
)
_OS_ERRNOS = {
    errno.ENOSPC: "no space left on device",
    errno.EFBIG: "file too large",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
}
_TABLE = re.compile(r"Table with name (\S+) does not exist")


class LakeFault(LakeError):
    """A lake error a retry cannot fix; its message says what to do."""


def lake_fault(exc: BaseException, where: str = "the lake") -> LakeFault | None:
    """The fault `exc` is, or None when it may pass on a retry (a conflict, anything else)."""
    if isinstance(exc, LakeFault):
        return exc
    if is_commit_conflict(exc):
        return None
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = str(exc)
    if isinstance(exc, OSError) and exc.errno in _OS_ERRNOS:
        text = f"{_OS_ERRNOS[exc.errno]}: {exc.filename or ''}"
    if not isinstance(exc, duckdb.Error | OSError):
        return None
    for pattern, what, todo in _FILE_FAULTS:
        match = pattern.search(text)
        if match:
            file = next(group for group in match.groups() if group)
            return LakeFault(f"{what.format(file=file)}: {todo} (not retried)")
    lowered = text.lower()
    for marker, what, todo in _DISK_FAULTS:
        if marker in lowered:
            subject = getattr(exc, "filename", None) or where
            return LakeFault(
                f"writing {subject} failed, {what}: {todo} (not retried; {first_line})"
            )
    if any(marker in lowered for marker in _CATALOG_FAULTS):
        return LakeFault(
            f"the lake's catalog of {where} cannot be read or written ({first_line}): check its "
            "disk (space, file-size limit, permissions) or restore it from a backup (not retried)"
        )
    if isinstance(exc, duckdb.CatalogException):
        table = _TABLE.search(text)
        subject = f"table {table.group(1)}" if table else "an object"
        return LakeFault(
            f"{subject} is not in the lake's catalog of {where} ({first_line}): the catalog may "
            "be an older or another lake's; check PFO_LAKE_CATALOG (not retried)"
        )
    return None

"""The lake's errors: each says what failed and what to do about it."""

from __future__ import annotations


class LakeError(RuntimeError):
    """The lake cannot be opened or written, with what to do about it."""


class LakeMissing(LakeError):
    """The catalog is missing or empty while an earlier lake's files remain (`guard`)."""


class LakeCommitConflict(LakeError):
    """Other writers kept committing first: the commit was retried and gave up."""

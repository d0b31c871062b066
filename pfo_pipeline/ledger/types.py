"""The ledger's own vocabulary, shared by mapping, validation, the store and the sync commands:
who a load is for, a record that cannot enter, a known account, what a load did. Kept apart so
none of those modules has to import another just for a type."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FAULT_RECORD = "record"  # the record itself is malformed
FAULT_HELD_BACK = "held_back"  # a valid record waiting on something else (its account)


@dataclass(frozen=True, slots=True)
class SyncContext:
    """One load: the tenant and connection it writes for, Powens' user, and its load id."""

    tenant_id: str
    connection_id: str
    powens_user_id: str
    load_id: str


@dataclass(frozen=True, slots=True)
class Reject:
    """A record that cannot enter the ledger (yet), with why; it goes to `ledger.quarantine`."""

    external_id: str | None
    reasons: tuple[str, ...]
    record: Any = field(repr=False)
    fault: str = FAULT_RECORD


@dataclass(frozen=True, slots=True)
class AccountRef:
    """A Powens account already in the ledger: its canonical id and currency."""

    account_id: str
    currency: str | None


@dataclass
class LoadStats:
    """What one load did; recorded in `ledger.loads` and as materialisation metadata."""

    rows_in: int = 0
    upserted: int = 0
    inserted: int = 0
    unchanged: int = 0
    quarantined: int = 0
    tombstoned: int = 0
    twins_linked: int = 0
    duplicates: int = 0  # extra copies of one Powens row within the load (newest kept)
    held_back: int = 0  # valid rows waiting on their account; the cursor stays before them
    quarantine_resolved: int = 0  # earlier quarantine rows whose record has now loaded
    upstream_moved: bool = False  # Powens' listing moved while the load paged
    cursor_held: bool = False  # ...so the cursor stayed where the load began (`cursor_rule`)
    shift_reasons: list[str] = field(default_factory=list)  # the first signs of that move

    def as_metadata(self) -> dict[str, int | bool | str]:
        data: dict[str, int | bool | str] = dict(self.__dict__)
        data["shift_reasons"] = "; ".join(self.shift_reasons) or "-"
        return data

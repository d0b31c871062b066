"""Documented Powens behaviours the emulator can take on, applied to the JSON of its objects.

Each is a switch of `FaultConfig` (all off by default: the emulator then follows S3's schemas) and
docs/powens-api.md §13 gives its source:
- fields S3 marks nullable, sent as null (`rate_null_fields`), and a null `value`
  (`rate_null_value`), on records chosen by their id (the same ones on every read);
- timestamps with an explicit offset instead of naive Paris wall-clock (`offset_timestamps`, S6);
- the legacy connection shape: `error` and `id_bank` instead of `state` and `id_connector`
  (`legacy_connection_error`, S1).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from powens_emulator.catalog import TYPE_NAMES
from powens_emulator.clock import PARIS, TIMESTAMP_FORMAT

# The fields S3 marks nullable, per object (not `deleted`/`disabled`: null would undelete it).
NULLABLE = {
    "transaction": (
        "application_date", "datetime", "gross_value", "original_value", "original_gross_value",
        "original_currency", "commission", "commission_currency", "wording", "id_category",
        "rdatetime", "vdate", "vdatetime", "bdate", "bdatetime", "id_cluster", "country", "card",
        "counterparty", "comment", "last_update",
    ),
    "account": ("id_parent", "balance", "coming", "currency", "last_update", "number", "iban", "loan"),
    "connection": ("id_user", "error_message", "last_update", "last_push", "expire", "next_try"),
    "connector": (
        "hidden", "code", "color", "slug", "urls", "sync_periodicity", "months_to_fetch", "siret",
    ),
}  # fmt: skip
# S3 `sql-date-time` fields of each object (sent with an offset under `offset_timestamps`).
TIMESTAMPS = {
    "transaction": ("date_scraped", "last_update", "deleted"),
    "account": ("last_update", "deleted", "disabled"),
    "connection": ("last_update", "created", "last_push", "expire", "next_try"),
    "user": ("signin",),
}


def chosen(seed: int, rate: float, what: str, key: int) -> bool:
    """Whether the record `key` of kind `what` takes a switch applied at `rate`: fixed by the
    seed, so the same records are chosen on every read."""
    if rate <= 0:
        return False
    digest = hashlib.blake2b(f"{seed}|{what}|{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < rate


def with_offset(text: str) -> str:
    """A naive Paris `YYYY-MM-DD HH:MM:SS` as the same instant in ISO 8601 with a UTC offset."""
    naive = datetime.strptime(text, TIMESTAMP_FORMAT)
    return naive.replace(tzinfo=PARIS).astimezone(UTC).isoformat()


@dataclass(frozen=True, slots=True)
class Variant:
    """The switches in force for one response (from `FaultConfig`, read once per request)."""

    seed: int = 0
    type_names: tuple[str, ...] = TYPE_NAMES["spec"]
    rate_null_fields: float = 0.0
    rate_null_value: float = 0.0
    offset_timestamps: bool = False
    legacy_connection_error: bool = False

    @classmethod
    def of(cls, faults: Any) -> Variant:
        return cls(
            faults.seed,
            TYPE_NAMES[faults.transaction_types],
            faults.rate_null_fields,
            faults.rate_null_value,
            faults.offset_timestamps,
            faults.legacy_connection_error,
        )

    def nulls_fields(self, what: str, key: int) -> bool:
        return chosen(self.seed, self.rate_null_fields, f"null-{what}", key)

    def nulls_value(self, key: int) -> bool:
        return chosen(self.seed, self.rate_null_value, "null-value", key)

    def reshape(self, what: str, body: dict[str, Any], key: int) -> dict[str, Any]:
        """`body` (an object of kind `what`) with the switches applied, in place."""
        if self.nulls_fields(what, key):
            for name in NULLABLE.get(what, ()):
                body[name] = None
        if what == "transaction" and self.nulls_value(key):
            body["value"] = None
            body["gross_value"] = None
            body["formatted_value"] = None
        if self.offset_timestamps:
            for name in TIMESTAMPS.get(what, ()):
                if isinstance(body.get(name), str):
                    body[name] = with_offset(body[name])
        if what == "connection" and self.legacy_connection_error:
            body["error"] = body.pop("state", None)
            body["id_bank"] = body.pop("id_connector", None)
            body.pop("connector_uuid", None)
        return body

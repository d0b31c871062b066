"""A transactions load's stage: its validated batches spilled to Parquet files in the load's
private scratch folder until the single commit, and what the cursor rule needs to know of what
the load saw (`cursor_rule.CursorEvidence`).

The files keep staged rows out of the process's memory while it fetches: memory follows the
batch, not the history. Batches land there with their content hash already computed (cast to the
ledger's own types first, so the hash is the one the ledger stores in `row_hash`). The scratch
goes away when the commit ends, when a load that failed before its commit lets go of the stage,
or with the process (and a killed process's is swept by the next load).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from pfo_pipeline.lake import LAKE, registered
from pfo_pipeline.lake.scratch import Scratch, read_parquet_files
from pfo_pipeline.ledger.columns import (
    TRANSACTION_COLUMNS,
    TRANSACTION_HASHED,
    arrow_of,
    content_hash_sql,
)
from pfo_pipeline.ledger.cursor_rule import CursorEvidence, next_cursor
from pfo_pipeline.ledger.stage_copies import newest_copy_per_id
from pfo_pipeline.ledger.types import Reject, SyncContext


class TransactionStage:
    """Validated batches of one load and the evidence for its cursor."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, ctx: SyncContext) -> None:
        self.conn = conn
        self.ctx = ctx
        self.rejects: list[Reject] = []
        self.rows_in = 0
        self.evidence = CursorEvidence()
        self.duplicates = 0
        self.held_back = 0
        self._batches = 0
        self.scratch = Scratch(conn)
        # Batches are screened and staged on a connection of their own to the same database,
        # whose default catalog is the in-memory one: each statement on the lake's connection
        # opens a DuckLake transaction (a catalog read), ~4 ms; a batch took six of them.
        self.batch_conn = conn.cursor()
        self.batch_conn.execute("USE memory")
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = ? "
                "AND schema_name = 'ledger' AND table_name = 'bank_transactions'",
                [LAKE],
            ).fetchall()
        )
        self._typed = ", ".join(f"CAST({c} AS {types[c]}) AS {c}" for c in TRANSACTION_COLUMNS)
        self._files: list[Path] = []

    def close(self) -> None:
        """Let go of the scratch folder and database (idempotent)."""
        self.scratch.close()
        self.batch_conn.close()

    @property
    def relation(self) -> str:
        """The staged rows as a SQL relation (every copy; `newest_copies` keeps one per id)."""
        if not self._files:  # an empty relation of the stage's shape
            return (
                f"(SELECT {', '.join(TRANSACTION_COLUMNS)}, row_hash, 0::BIGINT AS stage_seq, "
                "0::UBIGINT AS id_hash FROM ledger.bank_transactions LIMIT 0)"
            )
        return read_parquet_files(self._files)

    def add(self, frame: pd.DataFrame, rejects: list[Reject], raw_rows: int) -> None:
        """One validated batch (and the batch's rejects) into the stage."""
        self.rows_in += raw_rows
        self.rejects.extend(rejects)
        self._batches += 1
        if frame.empty:
            return
        # `stage_seq` orders batches as served: among equal `last_update`s the later copy wins.
        # (A batch holds one copy per id: the caller keeps the newest.) `id_hash`, the id's
        # 64-bit hash, is what the commit groups to find copies across batches.
        with registered(self.batch_conn, _stage_batch=arrow_of(frame, TRANSACTION_COLUMNS)):
            path = self.scratch.write_parquet(
                f"batch_{self._batches:06d}",
                f"SELECT *, {content_hash_sql(TRANSACTION_HASHED)} AS row_hash, "
                f"{int(self._batches)}::BIGINT AS stage_seq, hash(id) AS id_hash "
                f"FROM (SELECT {self._typed} FROM _stage_batch)",
                on=self.batch_conn,
            )
        self._files.append(path)

    def newest_copies(self) -> tuple[str, int]:
        """The staged rows, one copy per id (`stage_copies`), and how many distinct rows; the
        copies dropped count as duplicates and as a sign the listing moved."""
        relation, distinct, copies = newest_copy_per_id(self.scratch, self.relation, self.rows_in)
        self.note_pages(None, copies.dropped, copies.in_two_versions)
        return relation, distinct

    def note_watermark(self, value: datetime | None) -> None:
        """The largest `last_update` of a batch's records (the caller passes it once per batch)."""
        self.evidence.note_last_update(value)

    def note_pages(self, server_time: datetime | None, duplicates: int, moved_rows: int) -> None:
        """What a batch's pages said: Powens' clock at the load's first page, how many repeated
        copies of a row they carried, and how many of those were a different version."""
        self.evidence.note_clock(server_time)
        self.duplicates += duplicates
        if duplicates:
            versions = f", {moved_rows} of them in two versions" if moved_rows else ""
            self.evidence.note_shift(f"{duplicates} rows served twice{versions}")

    def note_shift(self, reasons: list[str]) -> None:
        """Signs that Powens' listing moved while the load read it (`cursor_rule`)."""
        for reason in reasons:
            self.evidence.note_shift(reason)

    def note_held_back(self, last_updates: list[datetime | None]) -> None:
        """Rows that cannot load yet (unknown account, null `value`): the cursor stays before
        them, so the next sync reads them again."""
        self.held_back += len(last_updates)
        self.evidence.note_refetch(last_updates)

    def next_cursor(self, cursor_before: datetime | None) -> datetime | None:
        """The cursor this load may commit: `cursor_rule.next_cursor` of what it saw."""
        return next_cursor(self.evidence.seen(cursor_before))

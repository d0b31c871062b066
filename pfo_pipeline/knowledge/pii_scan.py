"""Scan the knowledge space for any IBAN, account number, counterparty or wording of the ledger.

Set-based: one join of the ledger's sensitive values against every text of the knowledge tables.
Findings name the entry and the kind of value, never the value itself. Names of the merchant
directory (public businesses, which the overview may name) are blanked out of the texts first.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from pfo_pipeline.categoriser.merchants import merchant_names_pattern
from pfo_pipeline.sql_files import load_sql


@dataclass(frozen=True)
class PiiFinding:
    entry_id: str
    kind: str
    suffix: str


def scan_knowledge_for_pii(
    conn: duckdb.DuckDBPyConnection, tenant_id: str | None = None
) -> list[PiiFinding]:
    params = {"tenant": tenant_id, "businesses": merchant_names_pattern()}
    rows = conn.execute(load_sql(__name__, "pii_scan"), params).fetchall()
    return [PiiFinding(*row) for row in rows]

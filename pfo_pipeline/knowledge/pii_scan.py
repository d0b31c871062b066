"""Scan the knowledge space for any IBAN, account number, counterparty or wording of the ledger.

Set-based: one join of the ledger's sensitive values against every text of the knowledge tables.
Findings name the entry and the kind of value, never the value itself. Names of the merchant
directory (public businesses, which the overview may name) are blanked out of the texts first.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from pfo_pipeline.categoriser.merchants import merchant_names_pattern

SCAN_SQL = """
WITH pii AS (
    SELECT DISTINCT kind, value FROM (
        SELECT 'iban' AS kind, replace(iban, ' ', '') AS value, tenant_id FROM ledger.bank_accounts
        UNION ALL SELECT 'account_number', replace(account_number_masked, '*', ''), tenant_id FROM ledger.bank_accounts
        UNION ALL SELECT 'counterparty_name', counterparty_name, tenant_id FROM ledger.bank_transactions
        UNION ALL SELECT 'counterparty_account', counterparty_account, tenant_id FROM ledger.bank_transactions
        UNION ALL SELECT 'description', description, tenant_id FROM ledger.bank_transactions
    )
    WHERE length(value) >= 5 AND ($tenant IS NULL OR tenant_id = $tenant)
),
raw_texts AS (
    SELECT entry_id, markdown AS text FROM knowledge.financial_overview
    WHERE $tenant IS NULL OR tenant_id = $tenant
    UNION ALL SELECT entry_id, CAST(summary AS VARCHAR) FROM knowledge.financial_overview
    WHERE $tenant IS NULL OR tenant_id = $tenant
    UNION ALL SELECT entry_id, content FROM knowledge.financial_overview_chunks
    WHERE $tenant IS NULL OR tenant_id = $tenant
),
texts AS (  -- public business names (the merchant directory) are not personal data
    SELECT entry_id, regexp_replace(lower(text), $businesses, ' ~ ', 'g') AS text FROM raw_texts
)
SELECT DISTINCT t.entry_id, p.kind, right(p.value, 4) AS suffix
FROM texts t JOIN pii p ON contains(t.text, lower(p.value))
ORDER BY 1, 2, 3
"""


@dataclass(frozen=True)
class PiiFinding:
    entry_id: str
    kind: str
    suffix: str


def scan_knowledge_for_pii(
    conn: duckdb.DuckDBPyConnection, tenant_id: str | None = None
) -> list[PiiFinding]:
    params = {"tenant": tenant_id, "businesses": merchant_names_pattern()}
    rows = conn.execute(SCAN_SQL, params).fetchall()
    return [PiiFinding(*row) for row in rows]

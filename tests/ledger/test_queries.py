"""The canonical ledger reads (`operations/queries.py`): filters, and keyset paging without a gap
or a repeat."""

from __future__ import annotations

from pathlib import Path

import pytest

from pfo_pipeline.lake.migrations import migrate
from pfo_pipeline.operations import queries
from tests.conftest import open_ledger


def test_ledger_queries_filter_and_page_without_gap_or_repeat(tmp_path: Path) -> None:
    conn = open_ledger(tmp_path / "ledger")
    migrate(conn)
    conn.execute(
        "INSERT INTO ledger.bank_transactions (id, account_id, tenant_id, connection_id, external_id, "
        "amount, currency, direction, date, booking_date, standardized_category, category_source, "
        "transaction_type, status, created_at, updated_at, first_seen_at, row_hash, load_id) "
        "SELECT 'txn_' || i, 'acc_1', 't', 'c', i::VARCHAR, (i - 50)::DECIMAL(18,2), 'EUR', "
        "CASE WHEN i < 50 THEN 'debit' ELSE 'credit' END, DATE '2026-11-01' + (i % 10)::INTEGER, "
        "DATE '2026-11-01', 'other', 'rule', 'card', 'booked', now(), now(), now(), 'h', 'l' "
        "FROM range(100) t(i)"
    )
    seen, cursor = [], None
    while True:
        page = queries.list_transactions(conn, "t", "acc_1", cursor=cursor, page_size=7)
        seen += [row["id"] for row in page.items]
        if not page.has_more:
            break
        cursor = page.next_cursor
    assert len(seen) == 100 == len(set(seen))
    debits = queries.list_transactions(conn, "t", "acc_1", direction="debit", page_size=500)
    assert len(debits.items) == 50 and not debits.has_more
    with pytest.raises(ValueError, match="cursor"):
        queries.list_transactions(conn, "t", "acc_1", cursor="not-a-cursor")
    with pytest.raises(ValueError, match="page_size"):
        queries.list_accounts(conn, "t", page_size=0)

"""An incremental load re-derives transfers (and twins) only around the days it changed: after
any sequence of loads, user overrides and account changes, the ledger must hold exactly what a
derivation over the whole history would give it.

Random ledgers in an in-memory DuckDB built by the lake's own migrations (the same SQL runs on
the lake; the sync tests run it there end to end): dense, so that pairs compete for the same
legs and a change reaches its neighbours' neighbours. Each round applies a load the way the
commit does (rows rewritten keep their transfer mark, lose a rule category) and compares the
scoped derivation with one over the whole history of the same ledger.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pfo_pipeline.lake import migrations, registered
from pfo_pipeline.ledger import transactions_commit
from pfo_pipeline.ledger.columns import TRANSACTION_COLUMNS
from pfo_pipeline.ledger.overrides import set_category_override
from pfo_pipeline.ledger.transactions_commit import commit_transactions_load
from pfo_pipeline.ledger.transactions_stage import TransactionStage
from pfo_pipeline.ledger.transfers import mark_internal_transfers
from pfo_pipeline.ledger.twins import link_reissued_twins
from pfo_pipeline.ledger.types import LoadStats, SyncContext
from tests.conftest import open_ledger

TENANT = "t1"
START = date(2026, 1, 1)
DAYS = 120
OWN_IBANS = {"acc_a": "FR76 0000 0000 0A", "acc_b": "FR7600000000 0B", "acc_l": "FR760000000L"}
AMOUNTS = ["10.00", "20.00", "35.00"]
# Every column a load writes from the stage, and the lineage of the rows it wrote.
LEDGER_CONTENT = (
    f"SELECT {', '.join(TRANSACTION_COLUMNS)}, row_hash, load_id, twin_of_id, transfer_pair_id "
    "FROM ledger.bank_transactions ORDER BY id"
)
MARKS = (
    "SELECT id, standardized_category, category_source, transfer_pair_id "
    "FROM ledger.bank_transactions ORDER BY id"
)


def memory_ledger() -> duckdb.DuckDBPyConnection:
    """The ledger's tables (the lake's numbered migrations) in an in-memory DuckDB."""
    conn = duckdb.connect()
    for _, ddl in migrations.MIGRATIONS:
        if "lake.set_option" not in ddl:  # a lake setting, nothing to create
            conn.execute(ddl)
    return conn


def add_account(conn: duckdb.DuckDBPyConnection, account_id: str, kind: str, iban: str | None):
    conn.execute(
        "INSERT INTO ledger.bank_accounts (id, tenant_id, user_id, connection_id, external_id, "
        "institution_id, institution_name, iban, account_type, currency, display_name, "
        "ownership, status, created_at, updated_at, row_hash, load_id) "
        "VALUES (?, ?, 'u', 'c', ?, 'i', 'Bank', ?, ?, 'EUR', ?, 'owner', 'active', now(), "
        "now(), 'h', 'l')",
        [account_id, TENANT, account_id, iban, kind, account_id],
    )


ROW_COLUMNS = ["id", "account_id", "amount", "currency", "date", "counterparty_account"]


def add_rows(conn: duckdb.DuckDBPyConnection, rows: list[tuple]) -> None:
    """Booked rows of the tenant, each (id, account, amount, currency, day, counterparty IBAN)."""
    with registered(conn, _rows=pd.DataFrame(rows, columns=ROW_COLUMNS)):
        conn.execute(
            "INSERT INTO ledger.bank_transactions (id, account_id, tenant_id, connection_id, "
            "external_id, amount, currency, direction, date, booking_date, counterparty_account, "
            "standardized_category, category_source, transaction_type, status, created_at, "
            "updated_at, first_seen_at, row_hash, load_id) "
            "SELECT id, account_id, ?, 'c', id, CAST(amount AS DECIMAL(18, 2)), currency, 'x', "
            "date, date, counterparty_account, 'other', 'rule', 'transfer', 'booked', now(), "
            "now(), now(), 'h', 'l' FROM _rows",
            [TENANT],
        )


def add_row(
    conn: duckdb.DuckDBPyConnection,
    tx_id: str,
    account: str,
    amount: str,
    day: date,
    *,
    counterparty: str | None = None,
) -> None:
    add_rows(conn, [(tx_id, account, amount, "EUR", day, counterparty)])


class Ledger:
    """A tenant's ledger and the loads applied to it, each noting the days it changed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.conn = memory_ledger()
        self.accounts = ["acc_a", "acc_b", "acc_c", "acc_l"]
        for account, kind in zip(
            self.accounts, ["checking", "savings", "checking", "loan"], strict=True
        ):
            add_account(self.conn, account, kind, OWN_IBANS.get(account))
        self.next_id = 0
        add_rows(
            self.conn,
            [self.new_row(START + timedelta(days=self.rng.randrange(DAYS))) for _ in range(600)],
        )

    def new_row(self, day: date) -> tuple:
        """A random leg: dense in amounts and accounts, some paid from an own IBAN."""
        rng = self.rng
        amount = rng.choice(AMOUNTS)
        self.next_id += 1
        return (
            f"txn_{self.next_id:05d}",
            rng.choice(self.accounts),
            amount if rng.random() < 0.5 else f"-{amount}",
            "EUR" if rng.random() < 0.95 else "USD",
            day,
            rng.choice(list(OWN_IBANS.values())) if rng.random() < 0.3 else None,
        )

    def load(self, changes: int) -> list[date]:
        """Insert, rewrite, move and cancel rows as a load would; the days it touched (each
        rewritten row's before and after)."""
        rng, conn = self.rng, self.conn
        # Changes cluster around a recent stretch (as Powens' do) with a few anywhere, and a
        # paired leg moves a month away (its old day is then far from every new one).
        around = START + timedelta(days=rng.randrange(DAYS))
        ids = conn.execute(
            "SELECT id, date FROM ledger.bank_transactions "
            "ORDER BY abs(date_diff('day', date, ?)), id",
            [around],
        ).fetchall()
        touched: list[date] = []
        for _ in range(changes):
            tx_id, day = ids[min(len(ids) - 1, int(rng.expovariate(1 / 40)))]
            if rng.random() < 0.1:
                tx_id, day = rng.choice(ids)
            kind = rng.choice(["amount", "move", "cancel", "insert", "counterparty"])
            if kind == "insert":
                new_day = around + timedelta(days=rng.randrange(-5, 6))
                add_rows(conn, [self.new_row(new_day)])
                touched.append(new_day)
            else:
                touched += [day, self.rewrite(tx_id, day, kind)]
        paired = conn.execute(
            "SELECT id, date FROM ledger.bank_transactions WHERE transfer_pair_id IS NOT NULL "
            "ORDER BY id"
        ).fetchall()
        tx_id, day = rng.choice(paired)
        touched += [day, self.rewrite(tx_id, day, "move", by=rng.choice([-30, 30]))]
        return touched

    def rewrite(self, tx_id: str, day: date, kind: str, by: int | None = None) -> date:
        """Rewrite a row as the commit does (it takes the categoriser's category again, a
        user's stays, and keeps its transfer_pair_id); its day after."""
        rng = self.rng
        new_day = day
        if kind == "move":
            new_day = day + timedelta(days=by or rng.choice([-4, -2, -1, 1, 2, 3, 5, 9]))
        assignment, value = {
            "amount": ("amount = ?", rng.choice(AMOUNTS) if rng.random() < 0.5 else "-10.00"),
            "move": ("date = ?", new_day),
            "cancel": ("status = ?", "cancelled"),
            "counterparty": ("counterparty_account = ?", rng.choice(list(OWN_IBANS.values()))),
        }[kind]
        self.conn.execute(
            f"UPDATE ledger.bank_transactions SET {assignment}, "
            "standardized_category = CASE WHEN category_source = 'user' "
            "THEN standardized_category ELSE 'other' END, "
            "category_source = CASE WHEN category_source = 'user' THEN 'user' ELSE 'rule' END "
            "WHERE id = ?",
            [value, tx_id],
        )
        return new_day


@contextmanager
def rolled_back(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")


def whole_history_marks(conn: duckdb.DuckDBPyConnection) -> list[tuple]:
    """The marks a pairing of the whole history would leave on the ledger as it is now."""
    with rolled_back(conn):
        mark_internal_transfers(conn, TENANT)
        return conn.execute(MARKS).fetchall()


def last_whole_pairing(conn: duckdb.DuckDBPyConnection) -> list[tuple]:
    return conn.execute("SELECT * FROM ledger.transfer_pairings").fetchall()


@pytest.mark.parametrize("seed", range(3))
def test_incremental_transfer_pairing_leaves_the_marks_of_the_whole_history(seed: int) -> None:
    ledger = Ledger(seed)
    conn, rng = ledger.conn, ledger.rng
    assert mark_internal_transfers(conn, TENANT, changed_days=[START]) > 20  # no record: whole
    rounds_that_changed_marks = 0
    for round_number in range(12):
        events = {
            3: "override",
            5: "account becomes a loan",
            7: "iban changed",
            9: "account added",
            11: "loan becomes an account",
        }
        event = events.get(round_number)
        before = last_whole_pairing(conn)
        if event == "override":
            paired = conn.execute(
                "SELECT id FROM ledger.bank_transactions WHERE transfer_pair_id IS NOT NULL "
                "AND category_source = 'transfer' ORDER BY id"
            ).fetchall()
            for (tx_id,) in rng.sample(paired, 3):
                set_category_override(conn, TENANT, tx_id, "leisure")
        elif event == "account becomes a loan":
            conn.execute("UPDATE ledger.bank_accounts SET account_type = 'loan' WHERE id = 'acc_c'")
        elif event == "iban changed":
            conn.execute("UPDATE ledger.bank_accounts SET iban = NULL WHERE id = 'acc_b'")
        elif event == "account added":
            add_account(conn, "acc_d", "checking", OWN_IBANS["acc_l"])
            ledger.accounts.append("acc_d")
        elif event == "loan becomes an account":
            conn.execute("UPDATE ledger.bank_accounts SET account_type = 'card' WHERE id = 'acc_l'")
        changed_days = ledger.load(changes=rng.randrange(1, 12))
        expected = whole_history_marks(conn)
        conn.execute("BEGIN")
        rounds_that_changed_marks += mark_internal_transfers(conn, TENANT, changed_days) > 0
        conn.execute("COMMIT")
        marks = conn.execute(MARKS).fetchall()
        assert marks == expected, f"round {round_number} ({event or 'a load'})"
        if event is None:
            assert last_whole_pairing(conn) == before  # it was scoped
        else:
            assert last_whole_pairing(conn) != before  # it read the whole history
    assert rounds_that_changed_marks >= 6


def test_a_pair_broken_six_days_from_the_change_leaves_its_leg_the_whole_historys_mark() -> None:
    """The farthest a change reaches: a new credit on day d takes the debit of day d+3 from the
    credit of day d+6 (same gap, smaller id), which is left unpaired and paid from an own IBAN.
    Whether a row there is paired is decided by debits up to d+9 (a narrower scope leaves it its
    old pair), and a row paid from an own IBAN 7 days away keeps its pair with a debit 10 days
    away (an own-IBAN mark there, not knowing that pair, would take it away)."""
    conn = memory_ledger()
    add_account(conn, "acc_a", "checking", OWN_IBANS["acc_a"])
    add_account(conn, "acc_b", "savings", OWN_IBANS["acc_b"])
    day = START + timedelta(days=30)
    add_row(conn, "txn_d", "acc_a", "-50.00", day + timedelta(days=3))
    add_row(
        conn, "txn_r", "acc_b", "50.00", day + timedelta(days=6), counterparty="FR76 0000 0000 0A"
    )
    add_row(conn, "txn_s", "acc_a", "-70.00", day + timedelta(days=9))  # a pair 9 days away
    add_row(
        conn, "txn_t", "acc_b", "70.00", day + timedelta(days=6), counterparty="FR76 0000 0000 0A"
    )
    add_row(
        conn, "txn_u", "acc_b", "80.00", day + timedelta(days=7), counterparty="FR7600000000 0B"
    )
    add_row(conn, "txn_v", "acc_a", "-80.00", day + timedelta(days=10))
    assert mark_internal_transfers(conn, TENANT) == 6
    add_row(conn, "txn_c", "acc_b", "50.00", day)  # the load's new credit
    expected = whole_history_marks(conn)
    assert mark_internal_transfers(conn, TENANT, changed_days=[day]) == 3
    assert conn.execute(MARKS).fetchall() == expected
    assert ("txn_r", "internal_transfer", "transfer", None) in expected  # unpaired, own IBAN


EXTRA_ROWS = 1400


@pytest.mark.parametrize("seed", range(3))
def test_transfers_paired_in_small_chunks_are_the_pairs_of_the_whole_history(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dense random ledger (pairs competing for legs, rows paid from own IBANs) paired in
    chunks of a few days, each read with its 6 days of margin: the marks equal those of the whole
    history in one chunk. Pairs straddle the cuts, and rows marked only for their own IBAN lie
    next to them (fails with a margin a day short)."""
    import pfo_pipeline.ledger.transfers as transfers

    ledger = Ledger(seed)
    conn = ledger.conn
    days = [START + timedelta(days=ledger.rng.randrange(DAYS)) for _ in range(EXTRA_ROWS)]
    add_rows(conn, [ledger.new_row(day) for day in days])
    expected = whole_history_marks(conn)  # one chunk: the whole history's legs fit in it
    cuts: list[date] = []
    chunked = transfers.day_chunks

    def noted(days: list[tuple[date, int]], limit: int, margin: timedelta):
        for start, stop in chunked(days, limit, margin):
            cuts.append(stop)
            yield start, stop

    monkeypatch.setattr(transfers, "CHUNK_LEGS", 200)
    monkeypatch.setattr(transfers, "day_chunks", noted)
    mark_internal_transfers(conn, TENANT)
    assert conn.execute(MARKS).fetchall() == expected
    assert len(cuts) > 10
    straddling, own_iban_only = conn.execute(
        "WITH cut AS (SELECT unnest($cuts::DATE[]) AS day) "
        "SELECT (SELECT count(DISTINCT transfer_pair_id) FROM ("
        "    SELECT transfer_pair_id FROM ledger.bank_transactions t, cut "
        "    WHERE transfer_pair_id IS NOT NULL GROUP BY transfer_pair_id, cut.day "
        "    HAVING min(t.date) < cut.day AND max(t.date) >= cut.day)), "
        "(SELECT count(*) FROM ledger.bank_transactions t, cut "
        "    WHERE t.standardized_category = 'internal_transfer' AND t.transfer_pair_id IS NULL "
        "    AND t.date BETWEEN cut.day - 3 AND cut.day + 2)",
        {"cuts": cuts[:-1]},
    ).fetchall()[0]
    assert straddling >= 5 and own_iban_only >= 5


def add_edge_pairs(conn: duckdb.DuckDBPyConnection, left: date, right: date) -> list[tuple]:
    """Legs whose pairs reach as far as pairs can reach past the edges of a stretch [left, right)
    of days: a credit 3 days outside, whose nearest debits tie 3 days either side of it (the
    smaller id wins), decides its pair with a debit 6 days outside. Rows paid to an own IBAN lie
    among them. Returns the whole history's marks, checked to be those pairs."""
    add_account(conn, "acc_a", "checking", OWN_IBANS["acc_a"])
    add_account(conn, "acc_b", "savings", OWN_IBANS["acc_b"])
    a_iban = "FR76 0000 0000 0A"
    # Left edge: e1 (6 days out) takes e2 from e3 (at the edge), which is left unpaired and
    # paid to an own IBAN.
    add_row(conn, "txn_e1", "acc_a", "-40.00", left - timedelta(days=6))
    add_row(conn, "txn_e2", "acc_b", "40.00", left - timedelta(days=3), counterparty=a_iban)
    add_row(conn, "txn_e3", "acc_a", "-40.00", left, counterparty=OWN_IBANS["acc_b"])
    # Right edge: f1 (6 days past it) takes f3 from f2 (on the last day inside).
    add_row(conn, "txn_f2", "acc_a", "-60.00", right - timedelta(days=1), counterparty=a_iban)
    add_row(conn, "txn_f3", "acc_b", "60.00", right + timedelta(days=2))
    add_row(conn, "txn_f1", "acc_a", "-60.00", right + timedelta(days=5))
    expected = whole_history_marks(conn)
    assert [row[0] for row in expected if row[3] is not None] == [
        "txn_e1", "txn_e2", "txn_f1", "txn_f3"
    ]  # fmt: skip
    assert ("txn_e3", "internal_transfer", "transfer", None) in expected
    assert ("txn_f2", "internal_transfer", "transfer", None) in expected
    return expected


def test_pairs_at_both_edges_of_a_chunk_are_those_of_the_whole_history(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Chunks cut at day K, with pairs reaching as far past the cut as pairs can on both sides:
    the marks equal the whole history's (fails with a chunk's margin a day short at either end)."""
    import pfo_pipeline.ledger.transfers as transfers

    conn = memory_ledger()
    cut = START + timedelta(days=30)
    expected = add_edge_pairs(conn, cut, cut)

    def cut_at_k(days: list[tuple[date, int]], limit: int, margin: timedelta):
        yield days[0][0], cut
        yield cut, days[-1][0] + timedelta(days=1)

    monkeypatch.setattr(transfers, "day_chunks", cut_at_k)
    mark_internal_transfers(conn, TENANT)
    assert conn.execute(MARKS).fetchall() == expected


def test_pairs_at_both_edges_of_an_incremental_range_are_those_of_the_whole_history() -> None:
    """An incremental pairing re-pairs the 9 days either side of a changed day, reading 6 more
    either side. Pairs reaching as far past both ends of that range as pairs can keep the whole
    history's marks (fails with the range's read a day short at either end: the edge legs would
    pair with each other)."""
    from pfo_pipeline.ledger.transfers import SCOPE_REACH

    conn = memory_ledger()
    changed = START + timedelta(days=40)
    start, stop = changed - SCOPE_REACH, changed + SCOPE_REACH + timedelta(days=1)
    expected = add_edge_pairs(conn, start, stop)
    mark_internal_transfers(conn, TENANT)  # the whole history, noting the own accounts
    assert conn.execute(MARKS).fetchall() == expected
    mark_internal_transfers(conn, TENANT, changed_days=[changed])
    assert conn.execute(MARKS).fetchall() == expected


def staged_rows(rows: list[dict]) -> pd.DataFrame:
    """A validated batch of transactions as the sync stages it (unset columns empty)."""
    base = {c: None for c in TRANSACTION_COLUMNS}
    base |= {"tenant_id": TENANT, "connection_id": "c", "currency": "EUR", "direction": "x"}
    base |= {"standardized_category": "other", "category_source": "rule", "status": "booked"}
    base |= {"transaction_type": "transfer"}
    frame = pd.DataFrame([base | {"external_id": row["id"].split("_")[1]} | row for row in rows])
    frame["booking_date"] = frame["date"]
    return frame[TRANSACTION_COLUMNS]


def commit(
    conn: duckdb.DuckDBPyConnection, load_id: str, rows: list[dict], *, incremental: bool
) -> tuple[LoadStats, list[date] | None]:
    """Stage `rows` and commit them as one load; its stats and the days the derivations after
    the merge were given (the transfer pairing, recorded here instead of run)."""
    given: list[list[date] | None] = []
    stage = TransactionStage(conn, SyncContext(TENANT, "c", "1", load_id))
    stage.add(staged_rows(rows), [], raw_rows=len(rows))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            transactions_commit,
            "mark_internal_transfers",
            lambda _conn, _tenant, days: given.append(days) or 0,
        )
        stats = commit_transactions_load(
            stage,
            datetime(2026, 6, 1, tzinfo=UTC),
            cursor_before=None,
            window=(None, None),
            incremental=incremental,
        )
    return stats, given[0]


def test_an_incremental_merge_writes_what_a_whole_one_does_and_names_the_days_it_touched(
    tmp_path: Path,
) -> None:
    """The incremental merge (one match of the stage with the ledger, then only the changed
    rows' dates looked up) writes what the whole merge writes, and hands the post-merge steps
    every day its rows were on: before and after a move, of a rewrite, a tombstone, a new row."""
    day = date(2026, 3, 10)
    first = [
        {
            "id": f"txn_{i}",
            "account_id": "acc_a",
            "amount": Decimal(f"-{i}.00"),
            "date": day + timedelta(days=i),
        }
        for i in range(1, 6)
    ]
    ledgers = [tmp_path / "scoped", tmp_path / "whole"]
    conn = open_ledger(ledgers[0])
    migrations.migrate(conn)
    assert commit(conn, "load_1", first, incremental=False)[1] is None
    conn.close()
    shutil.copytree(ledgers[0], ledgers[1])
    second = [
        first[0],  # unchanged
        first[1] | {"date": day + timedelta(days=40)},  # moved
        first[2] | {"description": "edited"},  # rewritten in place
        first[3] | {"status": "cancelled"},  # tombstoned
        {
            "id": "txn_9",
            "account_id": "acc_a",
            "amount": Decimal("9.00"),
            "date": day - timedelta(days=20),
        },
    ]
    results, contents = [], []
    for ledger, incremental in zip(ledgers, [True, False], strict=True):
        conn = open_ledger(ledger, relocated=ledger == ledgers[1])
        try:
            results.append(commit(conn, "load_2", second, incremental=incremental))
            contents.append(conn.execute(LEDGER_CONTENT).fetchall())
        finally:
            conn.close()
    (scoped, days), (whole, none) = results
    assert contents[0] == contents[1]
    assert (scoped.inserted, scoped.upserted, scoped.unchanged, scoped.tombstoned) == (1, 4, 1, 1)
    assert (scoped.inserted, scoped.upserted, scoped.unchanged, scoped.tombstoned) == (
        whole.inserted, whole.upserted, whole.unchanged, whole.tombstoned,
    )  # fmt: skip
    assert none is None
    assert sorted(days) == [day + timedelta(days=d) for d in (-20, 2, 3, 4, 40)]


# The one-statement pass over the whole history that twins.py replaced: the reference.
WHOLE_HISTORY_TWIN_PASS = """
WITH pending AS (
    SELECT p.id, p.account_id, p.amount, p.date, CAST(p.external_id AS BIGINT) AS ext
    FROM ledger.bank_transactions p
    WHERE p.tenant_id = ? AND p.status = 'cancelled' AND p.booked_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM ledger.bank_transactions x WHERE x.twin_of_id = p.id)
),
candidates AS (
    SELECT p.id AS pending_id, b.id AS booked_id,
           abs(date_diff('day', p.date, b.date)) AS distance
    FROM pending p
    JOIN ledger.bank_transactions b
      ON b.account_id = p.account_id AND b.amount = p.amount
     AND b.status = 'booked' AND b.twin_of_id IS NULL
     AND CAST(b.external_id AS BIGINT) > p.ext
     AND b.date BETWEEN p.date AND p.date + INTERVAL 10 DAY
),
ranked AS (
    SELECT *,
        row_number() OVER (PARTITION BY pending_id ORDER BY distance, booked_id) AS by_pending,
        row_number() OVER (PARTITION BY booked_id ORDER BY distance, pending_id) AS by_booked
    FROM candidates
)
UPDATE ledger.bank_transactions t SET twin_of_id = r.pending_id
FROM (SELECT pending_id, booked_id FROM ranked WHERE by_pending = 1 AND by_booked = 1) r
WHERE t.id = r.booked_id
"""
TWINS = "SELECT id, twin_of_id FROM ledger.bank_transactions ORDER BY id"
WAITED_FOR = """
SELECT b.id, b.date FROM ledger.bank_transactions b
WHERE b.status = 'booked' AND b.twin_of_id IS NULL AND EXISTS (
    SELECT 1 FROM ledger.bank_transactions p
    WHERE p.status = 'cancelled' AND p.booked_at IS NULL AND p.account_id = b.account_id
      AND p.amount = b.amount AND p.date BETWEEN b.date - 10 AND b.date
      AND NOT EXISTS (SELECT 1 FROM ledger.bank_transactions x WHERE x.twin_of_id = p.id))
ORDER BY b.id
"""
# Rows of `_rows` (id, account_id, amount, date, status): Powens ids in the order of the ids,
# booked ones booked.
INSERT_TWIN_ROWS = (
    "INSERT INTO ledger.bank_transactions (id, account_id, tenant_id, connection_id, "
    "external_id, amount, currency, direction, date, booking_date, standardized_category, "
    "category_source, transaction_type, status, created_at, updated_at, first_seen_at, "
    "booked_at, row_hash, load_id) "
    "SELECT id, account_id, ?, 'c', CAST(CAST(id[5:] AS INTEGER) AS VARCHAR), "
    "CAST(amount AS DECIMAL(18, 2)), 'EUR', 'debit', date, date, 'other', 'rule', 'card', "
    "status, now(), now(), now(), CASE WHEN status = 'booked' THEN TIMESTAMP '2026-01-01' END, "
    "'h', 'l' FROM _rows"
)


class TwinLedger:
    """Cancelled pending rows and booked ones, dense in accounts and amounts so that several
    pending rows compete for the same booked one, and loads that add, rewrite and cancel."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.conn = memory_ledger()
        self.next_id = 0
        self.add([START + timedelta(days=self.rng.randrange(DAYS)) for _ in range(400)])

    def add(self, days: list[date], status: str | None = None) -> None:
        rows = []
        for day in days:
            self.next_id += 1
            kind = status or self.rng.choice(
                ["cancelled", "cancelled", "booked", "booked", "pending"]
            )
            rows.append(
                (f"txn_{self.next_id:05d}", self.rng.choice(["acc_a", "acc_b"]),
                 self.rng.choice(["-5.00", "-7.00"]), day, kind)
            )  # fmt: skip
        frame = pd.DataFrame(rows, columns=["id", "account_id", "amount", "date", "status"])
        with registered(self.conn, _rows=frame):
            self.conn.execute(INSERT_TWIN_ROWS, [TENANT])

    def load(self, changes: int) -> list[date]:
        """Re-issues (a cancelled pending row and its later booked copy), rows booked or
        cancelled alone, amounts rewritten, rows moved (one a month away); the days touched."""
        rng, conn = self.rng, self.conn
        around = START + timedelta(days=rng.randrange(DAYS))
        touched: list[date] = []
        for _ in range(changes):
            day = around + timedelta(days=rng.randrange(-8, 9))
            kind = rng.choice(["reissue", "new", "cancel", "amount", "move"])
            if kind == "reissue":
                later = day + timedelta(days=rng.randrange(0, 4))
                self.add([day], "cancelled")
                self.add([later], "booked")
                touched += [day, later]
                continue
            if kind == "new":
                self.add([day])
                touched.append(day)
                continue
            rows = conn.execute(
                "SELECT id, date FROM ledger.bank_transactions WHERE date BETWEEN ? AND ? "
                "ORDER BY id",
                [day - timedelta(days=3), day + timedelta(days=3)],
            ).fetchall()
            if not rows:
                continue
            tx_id, old_day = rng.choice(rows)
            new_day = old_day
            if kind == "move":
                new_day = old_day + timedelta(days=rng.choice([-30, -11, -4, 2, 6, 12, 30]))
            assignment, value = {
                "cancel": ("status = ?", "cancelled"),
                "amount": ("amount = ?", rng.choice(["-5.00", "-7.00", "-9.00"])),
                "move": ("date = ?", new_day),
            }[kind]
            conn.execute(
                f"UPDATE ledger.bank_transactions SET {assignment} WHERE id = ?", [value, tx_id]
            )
            touched += [old_day, new_day]
        # A booked row some unlinked pending row still has as a candidate (a link the next pass
        # makes may hang on it) moves a month away.
        waiting = conn.execute(WAITED_FOR).fetchall()
        if waiting:
            tx_id, old_day = rng.choice(waiting)
            new_day = old_day + timedelta(days=rng.choice([-30, 30]))
            conn.execute(
                "UPDATE ledger.bank_transactions SET date = ? WHERE id = ?", [new_day, tx_id]
            )
            touched += [old_day, new_day]
        return touched


@pytest.mark.parametrize("seed", range(3))
def test_incremental_twin_linking_links_what_the_whole_history_would(seed: int) -> None:
    """Scoped passes, chained as syncs chain them, each link exactly what the one-statement pass
    over the whole history links on the same ledger; loads that change nothing included (a link
    the last pass made can leave a row a new nearest, which the next pass links)."""
    ledger = TwinLedger(seed)
    conn, rng = ledger.conn, ledger.rng
    assert link_reissued_twins(conn, TENANT, changed_days=[START]) > 10  # no record: whole
    scoped_links = cascades = 0
    for round_number in range(14):
        changed_days = ledger.load(rng.randrange(1, 8)) if round_number % 3 else []
        with rolled_back(conn):
            expected_links = conn.execute(WHOLE_HISTORY_TWIN_PASS, [TENANT]).fetchall()[0][0]
            expected = conn.execute(TWINS).fetchall()
        conn.execute("BEGIN")
        linked = link_reissued_twins(conn, TENANT, changed_days)
        conn.execute("COMMIT")
        assert (linked, conn.execute(TWINS).fetchall()) == (expected_links, expected), (
            f"round {round_number}"
        )
        scoped_links += linked
        cascades += bool(linked and not changed_days)
    assert scoped_links >= 10 and cascades >= 1


def twin_row(conn: duckdb.DuckDBPyConnection, tx_id: str, day: date, status: str) -> None:
    """A -5.00 row of acc_a, its Powens id the number in `tx_id` (later ids are larger)."""
    frame = pd.DataFrame(
        [(tx_id, "acc_a", "-5.00", day, status)],
        columns=["id", "account_id", "amount", "date", "status"],
    )
    with registered(conn, _rows=frame):
        conn.execute(INSERT_TWIN_ROWS, [TENANT])


def test_twins_at_the_edges_of_the_scope_link_as_over_the_whole_history() -> None:
    """A pair 10 days apart on either side of the load's day, and a pair the last pass left
    (its pending row's nearest was linked, its booked row 10 days away): each is linked by the
    scoped pass as by the whole history's, and not before (a narrower scope misses them)."""
    conn = memory_ledger()
    day = START + timedelta(days=40)
    twin_row(conn, "txn_01", day - timedelta(days=10), "cancelled")  # waits for a booked twin
    twin_row(conn, "txn_05", day + timedelta(days=10), "booked")  # waits for a pending row
    # The last pass links txn_12 with txn_13 (same day), leaving txn_11 (10 days before) the
    # nearest of txn_14: the next pass links them.
    twin_row(conn, "txn_11", day + timedelta(days=50), "cancelled")
    twin_row(conn, "txn_12", day + timedelta(days=60), "cancelled")
    twin_row(conn, "txn_13", day + timedelta(days=60), "booked")
    twin_row(conn, "txn_14", day + timedelta(days=60), "booked")
    assert link_reissued_twins(conn, TENANT) == 1
    twin_row(conn, "txn_02", day, "booked")  # the load's rows, on one day
    twin_row(conn, "txn_03", day, "cancelled")
    with rolled_back(conn):
        assert conn.execute(WHOLE_HISTORY_TWIN_PASS, [TENANT]).fetchall()[0][0] == 3
        expected = conn.execute(TWINS).fetchall()
    assert link_reissued_twins(conn, TENANT, changed_days=[day]) == 3
    assert conn.execute(TWINS).fetchall() == expected
    assert {tx_id: twin for tx_id, twin in expected if twin} == {
        "txn_13": "txn_12", "txn_02": "txn_01", "txn_05": "txn_03", "txn_14": "txn_11",
    }  # fmt: skip

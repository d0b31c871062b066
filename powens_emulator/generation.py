"""World generation: the family's activity of a span of days, appended to the world's rows.

Fixed monthly events (salaries, transfers, the mortgage, direct debits, the card settlement, rent)
plus random card spending drawn from the world's seeded generator. The order of draws and of rows
is part of the contract: a seed gives the same data byte for byte.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np

from powens_emulator.catalog import (
    CARD_MEANS,
    CARD_MERCHANTS,
    CARD_SETTLEMENT,
    CARD_WEIGHTS,
    CASH,
    EMPLOYER,
    EMPLOYER_2,
    MONTHLY_DEBITS,
    MORTGAGE,
    RENT,
    TARGET_BALANCES,
    US_EMPLOYER,
    T,
    transfer_to,
)
from powens_emulator.clock import EPOCH, day_number, seconds

if TYPE_CHECKING:
    from powens_emulator.data import FamilyWorld

# (account, day, cents, type, merchant index, original USD cents or 0)
Row = tuple[int, int, int, int, int, int]
CARD_ACCOUNT = 104


def fixed_rows_estimate(history_days: int) -> int:
    """Rows of fixed monthly events over the history (the rest of the size is card spending)."""
    return int(history_days / 30.4 * (len(MONTHLY_DEBITS) + 14))


def generate_days(world: FamilyWorld, first: int, last: int) -> int:
    """Append the activity of days [first, last]; returns the number of new rows."""
    spend = card_spending(world, first, last)
    rows: list[Row] = []
    for day in range(first, last + 1):
        rows += _fixed_rows_of(world, day, spend)
    return len(append_generated(world, rows, spend))


def append_generated(
    world: FamilyWorld, rows: list[Row], spend: dict[str, np.ndarray]
) -> np.ndarray:
    """Append new activity (`rows`, then the `spend` columns) ordered by day and account, under
    new ids, scraped the morning after and pending when a card row is a day old or less.
    Returns the id given to each input row, in input order (`rows` first, then `spend`)."""
    fixed = _to_columns(rows)
    columns = {k: np.concatenate([fixed[k], spend[k]]) for k in fixed}
    order = np.lexsort((columns["account"], columns["day"]))
    columns = {k: v[order] for k, v in columns.items()}
    count = len(columns["day"])
    columns["id"] = np.arange(world.next_id, world.next_id + count, dtype=np.int64)
    world.next_id += count
    ids = np.empty(count, np.int64)
    ids[order] = columns["id"]
    scrape = columns["day"].astype(np.int64) * 86400 + 86400 + 6 * 3600
    scrape = np.minimum(scrape, seconds(world.now))
    columns["scraped"] = scrape
    columns["last_update"] = scrape.copy()
    columns["deleted"] = np.full(count, -1, np.int64)
    today = day_number(world.now.date())
    carded = np.isin(columns["type"], [T["card"], T["deferred_card"]])
    columns["coming"] = carded & (columns["day"] >= today - 1)
    world.rows.append(columns)
    world.version += 1
    return ids


def _fixed_rows_of(world: FamilyWorld, day: int, spend: dict[str, np.ndarray]) -> list[Row]:
    """The fixed events of one day, in the order that numbers the merchants and sorts the rows."""
    d = EPOCH + timedelta(days=day)
    m = world.merchant_index
    rows: list[Row] = []
    if d.day == 1:
        rows.append((101, day, 345000, T["transfer"], m(EMPLOYER), 0))
        rows.append((102, day, 298000, T["transfer"], m(EMPLOYER_2), 0))
        rows.append((107, day, 120000, T["transfer"], m(US_EMPLOYER), 0))
        rows.append((201, day, 210000, T["transfer"], m(EMPLOYER), 0))
    if d.day == 3:
        joint = m(transfer_to("COMPTE JOINT", world.accounts[102].iban))
        rows.append((101, day, -50000, T["transfer"], joint, 0))
        rows.append((102, day, 50000, T["transfer"], joint, 0))
        savings = world.savings_account_id()
        to_savings = m(transfer_to("LIVRET A", world.accounts[savings].iban))
        rows.append((101, day, -30000, T["transfer"], to_savings, 0))
        rows.append((savings, day, 30000, T["transfer"], to_savings, 0))
    if d.day == 5:
        rows.append((101, day, -125000, T["loan_repayment"], m(MORTGAGE), 0))
        rows.append((105, day, 125000, T["loan_repayment"], m(MORTGAGE), 0))
    if d.day == 7 and d.month % 3 == 1:
        pea = m(transfer_to("PEA", None))
        rows.append((101, day, -60000, T["transfer"], pea, 0))
        rows.append((106, day, 60000, T["transfer"], pea, 0))
    if d.day == 28:
        rows += _card_settlement(world, day, spend)
        rows.append((101, day, -8000, T["withdrawal"], m(CASH), 0))
    for dom, merchant, kind, amount in MONTHLY_DEBITS:
        if d.day == dom:
            rows.append((101 if dom % 2 else 102, day, -round(amount * 100), kind, m(merchant), 0))
    if d.day == 15:
        rows.append((201, day, -65000, T["transfer"], m(RENT), 0))
        rows.append((107, day, -4200, T["card"], m(CARD_MERCHANTS[16][0]), 0))
    return rows


def _card_settlement(world: FamilyWorld, day: int, spend: dict[str, np.ndarray]) -> list[Row]:
    """The card account's spending of the last 27 days, settled from the checking account."""
    start = day - 27
    r = world.rows
    mask = (r.account == CARD_ACCOUNT) & (r.day >= start) & (r.day < day) & (r.deleted < 0)
    month_spend = int(r.cents[mask].sum())
    in_window = (spend["account"] == CARD_ACCOUNT) & (spend["day"] >= start) & (spend["day"] < day)
    month_spend += int(spend["cents"][in_window].sum())
    if not month_spend:
        return []
    settlement = world.merchant_index(CARD_SETTLEMENT)
    return [
        (101, day, month_spend, T["summary_card"], settlement, 0),
        (CARD_ACCOUNT, day, -month_spend, T["summary_card"], settlement, 0),
    ]


def _to_columns(rows: list[Row]) -> dict[str, np.ndarray]:
    data = np.array(rows, dtype=np.int64).reshape(-1, 6)
    return {
        "account": data[:, 0],
        "day": data[:, 1].astype(np.int32),
        "cents": data[:, 2],
        "type": data[:, 3].astype(np.int16),
        "merchant": data[:, 4].astype(np.int32),
        "fx": data[:, 5],
    }


def card_spending(world: FamilyWorld, first: int, last: int) -> dict[str, np.ndarray]:
    """Random card payments over days [first, last], drawn from the world's generator."""
    rng = world.rng
    days = last - first + 1
    count = int(rng.poisson(world.spend_per_day * days)) if days > 0 else 0
    day = np.sort(rng.integers(first, last + 1, count)).astype(np.int32)
    merchant = rng.choice(len(CARD_MERCHANTS), size=count, p=CARD_WEIGHTS).astype(np.int32)
    amount = rng.lognormal(np.log(CARD_MEANS[merchant]), 0.45)
    cents = -np.maximum(100, np.round(amount * 100)).astype(np.int64)
    account = rng.choice([CARD_ACCOUNT, 101, 102], size=count, p=[0.55, 0.25, 0.20])
    account = account.astype(np.int64)
    kind = np.where(account == CARD_ACCOUNT, T["deferred_card"], T["card"]).astype(np.int16)
    abroad = (account == CARD_ACCOUNT) & (rng.random(count) < 0.01)
    fx = np.where(abroad, np.round(-cents * 1.08), 0).astype(np.int64)
    return {"account": account, "day": day, "cents": cents, "type": kind, "merchant": merchant,
            "fx": fx}  # fmt: skip


def initial_deletions(world: FamilyWorld) -> None:
    """About 0.5% of old booked rows were removed by the bank (visible only with `all`)."""
    r = world.rows
    old = (r.day < day_number(world.now.date()) - 10) & np.isin(
        r.type, [T["card"], T["deferred_card"]]
    )
    chosen = old & (world.rng.random(len(r)) < 0.005)
    r.deleted[chosen] = r.last_update[chosen] + 86400
    r.last_update[chosen] = r.deleted[chosen]
    np.minimum(r.last_update, seconds(world.now), out=r.last_update)
    np.minimum(r.deleted, seconds(world.now), out=r.deleted, where=chosen)


def set_openings(world: FamilyWorld) -> None:
    """Opening balances chosen so that each account ends on its target balance."""
    for account_id, target in TARGET_BALANCES.items():
        world.accounts[account_id].opening = target - world.booked_sum(account_id)

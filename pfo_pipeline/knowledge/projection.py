"""Each account's balance projected through the commitments due in the next days.

Starts from the account's latest known balance and applies the expected amount of every
recurring commitment on its expected date (nothing else: day-to-day spending is not guessed), so
a warning means the known commitments alone take the account under the floor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from pfo_pipeline.knowledge.recurring import RecurringSeries


@dataclass(frozen=True)
class Projection:
    account: str
    currency: str
    start_balance: Decimal
    start_day: date
    end_balance: Decimal
    lowest_balance: Decimal
    lowest_day: date
    commitments: int
    below_floor: bool
    floor: Decimal


def project_balances(
    balances: dict[str, tuple[str, Decimal, date]],
    due: list[tuple[date, RecurringSeries]],
    floor: Decimal,
) -> list[Projection]:
    """`balances`: account -> (currency, balance, its day); `due`: (date, series) by date."""
    out = []
    for account, (currency, balance, day) in sorted(balances.items()):
        running, lowest, lowest_day, count = balance, balance, day, 0
        for when, series in due:
            if series.account != account or series.currency != currency:
                continue
            running += series.next_amount
            count += 1
            if running < lowest:
                lowest, lowest_day = running, when
        if count:
            out.append(
                Projection(
                    account,
                    currency,
                    balance,
                    day,
                    running,
                    lowest,
                    lowest_day,
                    count,
                    lowest < floor,
                    floor,
                )
            )
    return out

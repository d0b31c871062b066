"""Changes by category against the previous period of the same length, largest first.

For income the comparison is on money in; for every other category on money out, so "groceries
+120" means 120 more spent on groceries.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

INCOME = "income"


@dataclass(frozen=True)
class CategoryChange:
    currency: str
    category: str
    previous: Decimal
    current: Decimal

    @property
    def change(self) -> Decimal:
        return self.current - self.previous

    @property
    def change_pct(self) -> Decimal | None:
        if not self.previous:
            return None
        return (self.change * 100 / self.previous).quantize(Decimal("0.1"))


def category_changes(
    current: dict[tuple[str, str], tuple[Decimal, Decimal]],
    previous: dict[tuple[str, str], tuple[Decimal, Decimal]],
) -> list[CategoryChange]:
    """Both maps: (currency, category) -> (inflow, outflow). Unchanged categories are left out."""
    changes = []
    for key in sorted(set(current) | set(previous)):
        currency, category = key
        pick = 0 if category == INCOME else 1
        now = current.get(key, (Decimal(0), Decimal(0)))[pick]
        before = previous.get(key, (Decimal(0), Decimal(0)))[pick]
        if now != before:
            changes.append(CategoryChange(currency, category, before, now))
    return sorted(changes, key=lambda c: (-abs(c.change), c.currency, c.category))

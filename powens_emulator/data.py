"""The emulator's world: a deterministic French family's banking history that moves with a clock.

Transactions are held column-wise in numpy arrays (a million rows stay a few dozen MB); the JSON
of a page is only built when that page is served. Balances are derived from the rows so they
always reconcile: balance = opening + booked, coming = pending.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from powens_emulator import changes, generation
from powens_emulator.catalog import CARD_MERCHANTS, Account, Merchant, family_accounts
from powens_emulator.clock import day_number, seconds


@dataclass
class Rows:
    """Column store of transactions; `FamilyWorld.merchants` holds the distinct wordings."""

    id: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    account: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    day: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    cents: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    type: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))
    merchant: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    coming: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    deleted: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # -1 = not deleted
    last_update: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    scraped: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    fx: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # original USD cents or 0

    def append(self, columns: dict[str, np.ndarray]) -> None:
        for name, values in columns.items():
            setattr(self, name, np.concatenate([getattr(self, name), values]))

    def __len__(self) -> int:
        return len(self.id)


class FamilyWorld:
    """All users, accounts and transactions of the emulator, plus its clock.

    Every change to the rows bumps `version` (caches of filtered views key on it); changes are
    made under `lock`.
    """

    def __init__(self, *, seed: int, transactions: int, history_days: int, now: datetime) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.now = now
        self.history_days = history_days
        self.lock = threading.RLock()
        self.version = 0
        self.merchants: list[Merchant] = [m for m, _, _ in CARD_MERCHANTS]
        self._merchant_ids: dict[Merchant, int] = {m: i for i, m in enumerate(self.merchants)}
        self.edited: dict[int, str] = {}  # transaction id -> wording the bank changed it to
        self.accounts: dict[int, Account] = family_accounts()
        self.rows = Rows()
        self.next_id = 1_000_000
        self.renumbered: tuple[int, int] | None = None
        self.advances = 0
        self.churned = 0  # upstream changes made while a client paged (the churn fault)
        start = day_number(now.date()) - history_days + 1
        self.spend_per_day = max(0.0, (transactions - self.fixed_rows_estimate()) / history_days)
        self.generate_days(start, day_number(now.date()))
        self.initial_deletions()
        generation.set_openings(self)

    # --- generation: what a world of another family overrides -----------------------------

    def fixed_rows_estimate(self) -> int:
        """Rows of fixed events over the history (the rest of `transactions` is card spending)."""
        return generation.fixed_rows_estimate(self.history_days)

    def generate_days(self, first: int, last: int) -> int:
        """Append the activity of days [first, last]; returns the number of new rows."""
        return generation.generate_days(self, first, last)

    def initial_deletions(self) -> None:
        """Rows of the generated history the bank has since removed."""
        generation.initial_deletions(self)

    def merchant_index(self, merchant: Merchant) -> int:
        """The merchant's index in `merchants`, registering it on first sight."""
        index = self._merchant_ids.get(merchant)
        if index is None:
            index = len(self.merchants)
            self.merchants.append(merchant)
            self._merchant_ids[merchant] = index
        return index

    # --- derived views ---------------------------------------------------------------------

    def savings_account_id(self) -> int:
        return 108 if self.renumbered else 103

    def booked_sum(self, account_id: int) -> int:
        r = self.rows
        mask = (r.account == account_id) & (r.deleted < 0) & ~r.coming
        return int(r.cents[mask].sum())

    def balance_cents(self, account_id: int) -> tuple[int, int]:
        """(balance, coming) in cents; a renumbered account carries its predecessor's history."""
        r = self.rows
        ids = [account_id]
        if self.renumbered and account_id == self.renumbered[1]:
            ids.append(self.renumbered[0])
        opening = sum(self.accounts[i].opening for i in ids)
        mask = np.isin(r.account, ids) & (r.deleted < 0)
        booked = int(r.cents[mask & ~r.coming].sum())
        coming = int(r.cents[mask & r.coming].sum())
        return opening + booked, coming

    def user_accounts(self, user_id: int) -> list[Account]:
        return [a for a in self.accounts.values() if a.user_id == user_id]

    def user_account_ids(self, user_id: int) -> np.ndarray:
        return np.array([a.id for a in self.user_accounts(user_id)], dtype=np.int64)

    def initial_token(self, user_id: int) -> str:
        """The user's token before any renewal (deterministic from the seed)."""
        return hashlib.sha256(f"token|{self.seed}|{user_id}".encode()).hexdigest()[:32]

    # --- the clock -------------------------------------------------------------------------

    def advance(self, days: int) -> dict[str, Any]:
        """Move the clock; new activity appears, pending rows are booked (in place, or deleted
        and re-issued under a new id), some rows are edited. Every change bumps last_update."""
        with self.lock:
            summary: dict[str, Any] = {
                "new": 0, "booked_in_place": 0, "reissued": 0, "deleted": 0, "edited": 0,
                "renumbered": None,
            }  # fmt: skip
            for _ in range(days):
                self.now += timedelta(days=1)
                self.advances += 1
                stamp = seconds(self.now)
                today = day_number(self.now.date())
                if self.renumbered is None:
                    changes.renumber_savings(self, stamp)
                    summary["renumbered"] = list(self.renumbered or ())
                changes.book_pending(self, today, stamp, summary)
                summary["new"] += self.generate_days(today, today)
                summary["edited"] += changes.edit_some(self, today, stamp)
            self.version += 1
            return summary

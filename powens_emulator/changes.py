"""What a day of the clock changes besides new activity: the savings account is renumbered once,
pending rows come due and are booked, and the bank edits a few recent wordings."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from powens_emulator.catalog import SAVINGS_INTEREST, Account, T
from powens_emulator.clock import EPOCH_TIME, day_number

if TYPE_CHECKING:
    from powens_emulator.data import FamilyWorld

OLD_SAVINGS, NEW_SAVINGS = 103, 108


def stable_fraction(seed: int, *parts: object) -> float:
    """A number in [0, 1) fixed by the seed and the parts (no generator state involved)."""
    digest = hashlib.blake2b(f"{seed}|{'|'.join(map(str, parts))}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big") / 2**64


def renumber_savings(world: FamilyWorld, stamp: int) -> None:
    """Powens deletes the savings account and finds it again under a new id (same IBAN)."""
    old = world.accounts[OLD_SAVINGS]
    old.deleted = EPOCH_TIME + timedelta(seconds=stamp)
    world.accounts[NEW_SAVINGS] = Account(
        NEW_SAVINGS, 1, 11, old.type, old.name, old.currency, old.iban, old.number, old.ownership, 0
    )
    world.renumbered = (OLD_SAVINGS, NEW_SAVINGS)
    # The bank posts the year's interest on the account under its new Powens id.
    interest = world.merchant_index(SAVINGS_INTEREST)
    day = day_number(world.now.date())
    world.rows.append(
        {
            "id": np.array([world.next_id], np.int64), "account": np.array([NEW_SAVINGS], np.int64),
            "day": np.array([day], np.int32), "cents": np.array([12_34], np.int64),
            "type": np.array([T["bank"]], np.int16), "merchant": np.array([interest], np.int32),
            "coming": np.zeros(1, bool), "deleted": np.full(1, -1, np.int64),
            "last_update": np.array([stamp], np.int64), "scraped": np.array([stamp], np.int64),
            "fx": np.zeros(1, np.int64),
        }
    )  # fmt: skip
    world.next_id += 1


def book_pending(world: FamilyWorld, today: int, stamp: int, summary: dict[str, Any]) -> None:
    """Book the pending rows two days old: about two thirds keep their id (booked in place), the
    others are deleted and re-issued booked under a new id. Counts go into `summary`."""
    r = world.rows
    due = np.flatnonzero(r.coming & (r.deleted < 0) & (r.day <= today - 2))
    fractions = [stable_fraction(world.seed, "book", int(r.id[i])) for i in due]
    in_place = [f < 2 / 3 for f in fractions]
    if len(due) >= 2 and (all(in_place) or not any(in_place)):
        # Whatever the calendar, a day with two or more rows coming due books one in place
        # and re-issues another: both Powens behaviours happen on every such day.
        in_place[int(np.argmax(fractions))] = False
        in_place[int(np.argmin(fractions))] = True
    reissue: list[int] = []
    for index, keeps_id in zip(due, in_place, strict=True):
        if keeps_id:
            r.coming[index] = False
            summary["booked_in_place"] += 1
        else:
            r.deleted[index] = stamp
            summary["deleted"] += 1
            reissue.append(index)
        r.last_update[index] = stamp
    if not reissue:
        return
    idx = np.array(reissue)
    count = len(idx)
    world.rows.append(
        {
            "id": np.arange(world.next_id, world.next_id + count, dtype=np.int64),
            "account": r.account[idx].copy(),
            "day": np.full(count, today, np.int32),
            "cents": r.cents[idx].copy(),
            "type": r.type[idx].copy(),
            "merchant": r.merchant[idx].copy(),
            "coming": np.zeros(count, bool),
            "deleted": np.full(count, -1, np.int64),
            "last_update": np.full(count, stamp, np.int64),
            "scraped": np.full(count, stamp, np.int64),
            "fx": r.fx[idx].copy(),
        }
    )
    world.next_id += count
    summary["reissued"] += count


def edit_some(world: FamilyWorld, today: int, stamp: int) -> int:
    """The bank rewrites the wording of about 0.5% of the last month's booked rows (at least one)."""
    r = world.rows
    recent = np.flatnonzero((r.day >= today - 30) & (r.deleted < 0) & ~r.coming & (r.day < today))
    if len(recent) == 0:
        return 0
    chosen = [
        i
        for i, row in enumerate(recent)
        if stable_fraction(world.seed, "edit", today, int(r.id[row])) < 0.005
    ]
    picks = recent[chosen] if chosen else recent[:1]
    for index in picks:
        base = world.merchants[int(r.merchant[index])].simplified
        world.edited[int(r.id[index])] = f"{base} (modifié)"
        r.last_update[index] = stamp
    return len(picks)

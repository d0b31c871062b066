"""Powens keeps synchronising banks while a client pages through transactions: the
`churn_per_page` fault changes the data between two page requests, the way real Powens does;
`backdated_import` and `late_change` are the once-only changes of issue 25 (below).

Each change moves the emulator's clock on by a minute (Powens' clock runs during a long sync) and
stamps `last_update` with it. The three kinds, in turn:
- a new booked row on top of the ordering (date desc): every later offset shifts down;
- a pending row booked with a later date: it moves up, past pages already read;
- an edit of an old booked row: in an incremental read it newly enters the result set;
- a recent booked row backdated by 400 days: it moves down, past the read position, which shifts
  the rows between up (an unchanged row can then be skipped by offset paging).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from powens_emulator.catalog import T
from powens_emulator.clock import day_number, seconds
from powens_emulator.data import FamilyWorld

KINDS = ("insert_on_top", "pending_moves_up", "edit", "backdated")


def churn(world: FamilyWorld, count: int) -> list[str]:
    """Apply `count` upstream changes; returns their kinds, in order."""
    done: list[str] = []
    with world.lock:
        for _ in range(count):
            kind = KINDS[world.churned % len(KINDS)]
            world.churned += 1
            world.now += timedelta(minutes=1)
            stamp, today = seconds(world.now), day_number(world.now.date())
            if kind == "pending_moves_up" and not _book_pending_later(world, today, stamp):
                kind = "insert_on_top"
            if kind == "edit" and not _edit_old_row(world, today, stamp):
                kind = "insert_on_top"
            if kind == "backdated" and not _backdate_recent_row(world, today, stamp):
                kind = "insert_on_top"
            if kind == "insert_on_top":
                _insert_on_top(world, today, stamp)
            done.append(kind)
        world.version += 1
    return done


def _insert_on_top(world: FamilyWorld, today: int, stamp: int) -> None:
    world.rows.append(
        {
            "id": np.array([world.next_id], np.int64),
            "account": np.array([101], np.int64),
            "day": np.array([today], np.int32),
            "cents": np.array([-(1000 + world.churned)], np.int64),
            "type": np.array([T["card"]], np.int16),
            "merchant": np.array([0], np.int32),
            "coming": np.zeros(1, bool),
            "deleted": np.full(1, -1, np.int64),
            "last_update": np.array([stamp], np.int64),
            "scraped": np.array([stamp], np.int64),
            "fx": np.zeros(1, np.int64),
        }
    )
    world.next_id += 1


def _book_pending_later(world: FamilyWorld, today: int, stamp: int) -> bool:
    r = world.rows
    pending = np.flatnonzero(r.coming & (r.deleted < 0))
    if len(pending) == 0:
        return False
    index = pending[np.argmin(r.id[pending])]
    r.coming[index] = False
    r.day[index] = today  # booked later than it was pending: it moves up in the ordering
    r.last_update[index] = stamp
    return True


def _edit_old_row(world: FamilyWorld, today: int, stamp: int) -> bool:
    r = world.rows
    old = np.flatnonzero((r.day < today - 30) & (r.deleted < 0) & ~r.coming)
    if len(old) == 0:
        return False
    index = old[(world.churned * 7919) % len(old)]
    base = world.merchants[int(r.merchant[index])].simplified
    world.edited[int(r.id[index])] = f"{base} (corrigé)"
    r.last_update[index] = stamp
    return True


def _backdate_recent_row(world: FamilyWorld, today: int, stamp: int) -> bool:
    r = world.rows
    recent = np.flatnonzero((r.day >= today - 3) & (r.deleted < 0) & ~r.coming)
    if len(recent) == 0:
        return False
    index = recent[np.argmax(r.id[recent])]
    r.day[index] -= 400
    r.last_update[index] = stamp
    return True


def backdated_import(world: FamilyWorld, rows: int, backdate_s: float) -> list[int]:
    """An import commits `rows` new booked rows dated today, stamped `backdate_s` before the
    clock: it stamps rows with the time it read them, not when they became visible (issue 25).
    Returns their ids."""
    with world.lock:
        today, stamp = day_number(world.now.date()), seconds(world.now) - int(backdate_s)
        ids = list(range(world.next_id, world.next_id + rows))
        world.rows.append(
            {
                "id": np.array(ids, np.int64),
                "account": np.full(rows, 102, np.int64),
                "day": np.full(rows, today, np.int32),
                "cents": -(2000 + np.arange(rows, dtype=np.int64)),
                "type": np.full(rows, T["card"], np.int16),
                "merchant": np.full(rows, 1, np.int32),
                "coming": np.zeros(rows, bool),
                "deleted": np.full(rows, -1, np.int64),
                "last_update": np.full(rows, stamp, np.int64),
                "scraped": np.full(rows, stamp, np.int64),
                "fx": np.zeros(rows, np.int64),
            }
        )
        world.next_id += rows
        world.version += 1
    return ids


def late_change(world: FamilyWorld) -> int | None:
    """The bank rewrites the wording of the oldest booked row, stamped a minute before the clock
    (later than a backdated import). Returns its id."""
    with world.lock:
        r = world.rows
        booked = np.flatnonzero((r.deleted < 0) & ~r.coming & np.isin(r.account, [101, 102]))
        if len(booked) == 0:
            return None
        index = booked[np.lexsort((r.id[booked], r.day[booked]))[0]]
        base = world.merchants[int(r.merchant[index])].simplified
        world.edited[int(r.id[index])] = f"{base} (rectifié)"
        r.last_update[index] = seconds(world.now) - 60
        world.version += 1
        return int(r.id[index])

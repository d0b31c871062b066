"""The emulator's world: a deterministic French family's banking history that moves with a clock.

Transactions are held column-wise in numpy arrays (a million rows stay a few dozen MB); the JSON
objects of a page are only built when that page is served. Balances are derived from the rows so
they always reconcile: balance = opening + booked, coming = pending.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np

EPOCH = date(1970, 1, 1)
TYPES = [
    "card", "deferred_card", "transfer", "order", "withdrawal", "bank", "fee",
    "loan_repayment", "check", "deposit", "summary_card",
]  # fmt: skip
T = {name: i for i, name in enumerate(TYPES)}


@dataclass(frozen=True)
class Merchant:
    wording: str  # original wording as the bank prints it
    simplified: str
    label: str | None = None  # counterparty label
    iban: str | None = None  # counterparty IBAN


def _iban(country: str, seed: str) -> str:
    digits = str(int(hashlib.sha256(seed.encode()).hexdigest(), 16))[:23]
    return f"{country}76{digits}"


# Card spending, by rough family budget weight: (merchant, weight, mean amount in EUR).
CARD_MERCHANTS: list[tuple[Merchant, float, float]] = [
    (Merchant("CB CARREFOUR CITY", "CARREFOUR CITY"), 14, 38),
    (Merchant("CB MONOPRIX PARIS 11", "MONOPRIX"), 10, 45),
    (Merchant("CB LIDL 0451", "LIDL"), 8, 52),
    (Merchant("CB FRANPRIX 2231", "FRANPRIX"), 6, 22),
    (Merchant("CB PICARD SURGELES", "PICARD"), 3, 35),
    (Merchant("CB BOULANGERIE PAUL", "BOULANGERIE PAUL"), 6, 9),
    (Merchant("CB SNCF INTERNET", "SNCF"), 3, 75),
    (Merchant("CB RATP NAVIGO", "RATP"), 2, 20),
    (Merchant("CB TOTALENERGIES ST 1123", "TOTALENERGIES"), 4, 65),
    (Merchant("CB UBER TRIP", "UBER"), 2, 18),
    (Merchant("CB PHARMACIE DU MARCHE", "PHARMACIE DU MARCHE"), 3, 24),
    (Merchant("CB DOCTOLIB CONSULTATION", "DOCTOLIB"), 1, 30),
    (Merchant("CB RESTAURANT LE PETIT ZINC", "RESTAURANT LE PETIT ZINC"), 5, 48),
    (Merchant("CB FNAC PARIS", "FNAC"), 2, 60),
    (Merchant("CB CINEMA UGC", "CINEMA UGC"), 2, 24),
    (Merchant("CB DECATHLON", "DECATHLON"), 2, 55),
    (Merchant("CB AMAZON EU", "AMAZON"), 4, 40),
    (Merchant("CB IKEA PARIS NORD", "IKEA"), 1, 120),
]
_CARD_WEIGHTS = np.array([w for _, w, _ in CARD_MERCHANTS], dtype=float)
_CARD_WEIGHTS /= _CARD_WEIGHTS.sum()
_CARD_MEANS = np.array([m for _, _, m in CARD_MERCHANTS], dtype=float)

EMPLOYER = Merchant(
    "VIR SEPA SALAIRE ACME SAS", "SALAIRE ACME SAS", "ACME SAS", _iban("FR", "acme")
)
EMPLOYER_2 = Merchant(
    "VIR SEPA SALAIRE HOPITAL ST LOUIS", "SALAIRE HOPITAL ST LOUIS", "AP-HP", _iban("FR", "aphp")
)
US_EMPLOYER = Merchant("ACH PAYROLL GLOBEX CORP", "PAYROLL GLOBEX", "GLOBEX CORP", None)
MONTHLY_DEBITS: list[tuple[int, Merchant, int, float]] = [
    # (day of month, merchant, type, amount)
    (5, Merchant("PRLV SEPA EDF CLIENTS", "EDF", "EDF", _iban("FR", "edf")), T["order"], 89.40),
    (8, Merchant("PRLV SEPA ENGIE", "ENGIE", "ENGIE", _iban("FR", "engie")), T["order"], 54.10),
    (10, Merchant("PRLV SEPA EAU DE PARIS", "EAU DE PARIS", "EAU DE PARIS", _iban("FR", "eau")), T["order"], 31.75),
    (12, Merchant("PRLV SEPA FREE MOBILE", "FREE MOBILE", "FREE MOBILE", _iban("FR", "free")), T["order"], 19.99),
    (14, Merchant("PRLV SEPA NETFLIX.COM", "NETFLIX", "NETFLIX", _iban("NL", "netflix")), T["order"], 13.49),
    (15, Merchant("PRLV SEPA SPOTIFY", "SPOTIFY", "SPOTIFY", _iban("SE", "spotify")), T["order"], 10.99),
    (16, Merchant("PRLV SEPA MUTUELLE GENERALE", "MUTUELLE", "MUTUELLE", _iban("FR", "mut")), T["order"], 62.30),
    (20, Merchant("PRLV SEPA DGFIP IMPOTS", "DGFIP IMPOTS", "DGFIP", _iban("FR", "dgfip")), T["order"], 215.00),
    (25, Merchant("FRAIS TENUE DE COMPTE", "FRAIS TENUE DE COMPTE"), T["fee"], 2.50),
    (26, Merchant("COTISATION CARTE VISA PREMIER", "COTISATION CARTE"), T["fee"], 11.25),
]  # fmt: skip
MORTGAGE = Merchant("ECHEANCE PRET IMMOBILIER", "ECHEANCE PRET IMMO")
CASH = Merchant("RETRAIT DAB BNP 75011", "RETRAIT DAB")
CARD_SETTLEMENT = Merchant("RELEVE CARTE VISA PREMIER", "RELEVE CARTE")


def _transfer(to_name: str, iban: str) -> Merchant:
    return Merchant(f"VIR SEPA VERS {to_name}", f"VIREMENT {to_name}", "FAMILLE MARTIN", iban)


@dataclass
class Account:
    id: int
    user_id: int
    connection_id: int
    type: str
    name: str
    currency: str
    iban: str | None
    number: str | None
    ownership: str | None
    opening: int  # cents
    parent: int | None = None
    deleted: datetime | None = None
    loan: dict[str, Any] | None = None


CURRENCIES = {
    "EUR": {"id": "EUR", "name": "Euro", "symbol": "€", "precision": 2, "prefix": False, "crypto": False},
    "USD": {"id": "USD", "name": "US Dollar", "symbol": "$", "precision": 2, "prefix": True, "crypto": False},
    "ZZZ": {"id": "ZZZ", "name": "?", "symbol": "?", "precision": 2, "prefix": False, "crypto": False},
}  # fmt: skip


def _ts(value: datetime) -> int:
    return int((value - datetime(1970, 1, 1)).total_seconds())


@lru_cache(maxsize=1 << 17)
def fmt_ts(seconds: int) -> str:
    return (datetime(1970, 1, 1) + timedelta(seconds=int(seconds))).strftime("%Y-%m-%d %H:%M:%S")


@lru_cache(maxsize=1 << 15)
def fmt_day(days: int) -> str:
    return (EPOCH + timedelta(days=int(days))).isoformat()


def _day(value: date) -> int:
    return (value - EPOCH).days


def _stable_fraction(seed: int, *parts: object) -> float:
    digest = hashlib.blake2b(f"{seed}|{'|'.join(map(str, parts))}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big") / 2**64


@dataclass
class Rows:
    """Column store of transactions; `merchants` holds the distinct wordings."""

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
    """All users, accounts and transactions of the emulator, plus its clock."""

    def __init__(self, *, seed: int, transactions: int, history_days: int, now: datetime) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.now = now
        self.history_days = history_days
        self.lock = threading.RLock()
        self.version = 0
        self.merchants: list[Merchant] = [m for m, _, _ in CARD_MERCHANTS]
        self._merchant_index: dict[Merchant, int] = {m: i for i, m in enumerate(self.merchants)}
        self.edited: dict[int, str] = {}
        self.accounts: dict[int, Account] = {}
        self.rows = Rows()
        self.next_id = 1_000_000
        self.renumbered: tuple[int, int] | None = None
        self.advances = 0
        self.churned = 0  # upstream changes made while a client paged (the churn fault)
        self._build_accounts()
        start = _day(now.date()) - history_days + 1
        self.spend_per_day = max(0.0, (transactions - self._fixed_rows_estimate()) / history_days)
        self._generate_days(start, _day(now.date()))
        self._initial_deletions()
        self._set_openings()

    # --- setup -----------------------------------------------------------------------------

    def _build_accounts(self) -> None:
        add = self.accounts.__setitem__
        add(
            101,
            Account(
                101,
                1,
                11,
                "checking",
                "Compte Chèque",
                "EUR",
                _iban("FR", "a101"),
                "00010145678",
                "owner",
                0,
            ),
        )
        add(
            102,
            Account(
                102,
                1,
                11,
                "checking",
                "Compte Joint",
                "EUR",
                _iban("FR", "a102"),
                "00010298765",
                "co-owner",
                0,
            ),
        )
        add(
            103,
            Account(
                103,
                1,
                11,
                "savings",
                "Livret A",
                "EUR",
                _iban("FR", "a103"),
                "00010311223",
                "owner",
                0,
            ),
        )
        add(
            104,
            Account(
                104,
                1,
                11,
                "card",
                "Carte Visa Premier",
                "EUR",
                None,
                "XXXX XXXX XXXX 4242",
                "owner",
                0,
                parent=101,
            ),
        )
        add(
            105,
            Account(
                105,
                1,
                11,
                "loan",
                "Prêt Immobilier",
                "EUR",
                None,
                "PRET000105",
                "co-owner",
                0,
                loan={
                    "type": "mortgage",
                    "total_amount": 250000.0,
                    "rate": 1.45,
                    "maturity_date": "2041-06-05",
                    "nb_payments_left": 176,
                },
            ),
        )
        add(106, Account(106, 1, 11, "pea", "PEA", "EUR", None, "PEA0001062", "owner", 0))
        add(
            107, Account(107, 1, 11, "checking", "US Checking", "USD", None, "US000107", "owner", 0)
        )
        add(
            201,
            Account(
                201,
                2,
                21,
                "checking",
                "Compte Courant",
                "EUR",
                _iban("FR", "a201"),
                "00020133445",
                "owner",
                0,
            ),
        )

    def _fixed_rows_estimate(self) -> int:
        return int(self.history_days / 30.4 * (len(MONTHLY_DEBITS) + 14))

    def _merchant(self, merchant: Merchant) -> int:
        index = self._merchant_index.get(merchant)
        if index is None:
            index = len(self.merchants)
            self.merchants.append(merchant)
            self._merchant_index[merchant] = index
        return index

    # --- generation ------------------------------------------------------------------------

    def _generate_days(self, first: int, last: int) -> int:
        """Generate the activity of days [first, last]; returns the number of new rows."""
        rows: list[
            tuple[int, int, int, int, int, int]
        ] = []  # account, day, cents, type, merchant, fx
        spend = self._card_spending(first, last)
        on_card = spend["account"] == 104
        acc = self.accounts
        savings = self.savings_account_id()
        for day in range(first, last + 1):
            d = EPOCH + timedelta(days=day)
            if d.day == 1:
                rows.append((101, day, 345000, T["transfer"], self._merchant(EMPLOYER), 0))
                rows.append((102, day, 298000, T["transfer"], self._merchant(EMPLOYER_2), 0))
                rows.append((107, day, 120000, T["transfer"], self._merchant(US_EMPLOYER), 0))
                rows.append((201, day, 210000, T["transfer"], self._merchant(EMPLOYER), 0))
            if d.day == 3:
                rows.append(
                    (
                        101,
                        day,
                        -50000,
                        T["transfer"],
                        self._merchant(_transfer("COMPTE JOINT", acc[102].iban)),
                        0,
                    )
                )
                rows.append(
                    (
                        102,
                        day,
                        50000,
                        T["transfer"],
                        self._merchant(_transfer("COMPTE JOINT", acc[102].iban)),
                        0,
                    )
                )
                rows.append(
                    (
                        101,
                        day,
                        -30000,
                        T["transfer"],
                        self._merchant(_transfer("LIVRET A", acc[savings].iban)),
                        0,
                    )
                )
                rows.append(
                    (
                        savings,
                        day,
                        30000,
                        T["transfer"],
                        self._merchant(_transfer("LIVRET A", acc[savings].iban)),
                        0,
                    )
                )
            if d.day == 5:
                rows.append((101, day, -125000, T["loan_repayment"], self._merchant(MORTGAGE), 0))
                rows.append((105, day, 125000, T["loan_repayment"], self._merchant(MORTGAGE), 0))
            if d.day == 7 and d.month % 3 == 1:
                rows.append(
                    (101, day, -60000, T["transfer"], self._merchant(_transfer("PEA", None)), 0)
                )
                rows.append(
                    (106, day, 60000, T["transfer"], self._merchant(_transfer("PEA", None)), 0)
                )
            if d.day == 28:
                start = day - 27
                mask = (self.rows.account == 104) & (self.rows.day >= start) & (self.rows.day < day)
                mask &= self.rows.deleted < 0
                month_spend = int(self.rows.cents[mask].sum())
                in_window = on_card & (spend["day"] >= start) & (spend["day"] < day)
                month_spend += int(spend["cents"][in_window].sum())
                if month_spend:
                    rows.append(
                        (
                            101,
                            day,
                            month_spend,
                            T["summary_card"],
                            self._merchant(CARD_SETTLEMENT),
                            0,
                        )
                    )
                    rows.append(
                        (
                            104,
                            day,
                            -month_spend,
                            T["summary_card"],
                            self._merchant(CARD_SETTLEMENT),
                            0,
                        )
                    )
                rows.append((101, day, -8000, T["withdrawal"], self._merchant(CASH), 0))
            for dom, merchant, kind, amount in MONTHLY_DEBITS:
                if d.day == dom:
                    rows.append(
                        (
                            101 if dom % 2 else 102,
                            day,
                            -round(amount * 100),
                            kind,
                            self._merchant(merchant),
                            0,
                        )
                    )
            if d.day == 15:
                rows.append(
                    (
                        201,
                        day,
                        -65000,
                        T["transfer"],
                        self._merchant(
                            Merchant("VIR LOYER", "LOYER", "SCI DU PARC", _iban("FR", "sci"))
                        ),
                        0,
                    )
                )
                rows.append((107, day, -4200, T["card"], self._merchant(CARD_MERCHANTS[16][0]), 0))
        fixed = self._to_columns(rows)
        columns = {k: np.concatenate([fixed[k], spend[k]]) for k in fixed}
        order = np.lexsort((columns["account"], columns["day"]))
        columns = {k: v[order] for k, v in columns.items()}
        count = len(columns["day"])
        columns["id"] = np.arange(self.next_id, self.next_id + count, dtype=np.int64)
        self.next_id += count
        scrape = columns["day"].astype(np.int64) * 86400 + 86400 + 6 * 3600
        scrape = np.minimum(scrape, _ts(self.now))
        columns["scraped"] = scrape
        columns["last_update"] = scrape.copy()
        columns["deleted"] = np.full(count, -1, np.int64)
        today = _day(self.now.date())
        carded = np.isin(columns["type"], [T["card"], T["deferred_card"]])
        columns["coming"] = carded & (columns["day"] >= today - 1)
        self.rows.append(columns)
        self.version += 1
        return count

    def _to_columns(self, rows: list[tuple[int, int, int, int, int, int]]) -> dict[str, np.ndarray]:
        data = np.array(rows, dtype=np.int64).reshape(-1, 6)
        return {
            "account": data[:, 0],
            "day": data[:, 1].astype(np.int32),
            "cents": data[:, 2],
            "type": data[:, 3].astype(np.int16),
            "merchant": data[:, 4].astype(np.int32),
            "fx": data[:, 5],
        }

    def _card_spending(self, first: int, last: int) -> dict[str, np.ndarray]:
        days = last - first + 1
        count = int(self.rng.poisson(self.spend_per_day * days)) if days > 0 else 0
        day = np.sort(self.rng.integers(first, last + 1, count)).astype(np.int32)
        merchant = self.rng.choice(len(CARD_MERCHANTS), size=count, p=_CARD_WEIGHTS).astype(
            np.int32
        )
        amount = self.rng.lognormal(np.log(_CARD_MEANS[merchant]), 0.45)
        cents = -np.maximum(100, np.round(amount * 100)).astype(np.int64)
        account = self.rng.choice([104, 101, 102], size=count, p=[0.55, 0.25, 0.20]).astype(
            np.int64
        )
        kind = np.where(account == 104, T["deferred_card"], T["card"]).astype(np.int16)
        fx = np.where(
            (account == 104) & (self.rng.random(count) < 0.01), np.round(-cents * 1.08), 0
        ).astype(np.int64)
        return {
            "account": account,
            "day": day,
            "cents": cents,
            "type": kind,
            "merchant": merchant,
            "fx": fx,
        }

    def _initial_deletions(self) -> None:
        """About 0.5% of old booked rows were removed by the bank (visible only with `all`)."""
        old = (self.rows.day < _day(self.now.date()) - 10) & np.isin(
            self.rows.type, [T["card"], T["deferred_card"]]
        )
        chosen = old & (self.rng.random(len(self.rows)) < 0.005)
        self.rows.deleted[chosen] = self.rows.last_update[chosen] + 86400
        self.rows.last_update[chosen] = self.rows.deleted[chosen]
        np.minimum(self.rows.last_update, _ts(self.now), out=self.rows.last_update)
        np.minimum(self.rows.deleted, _ts(self.now), out=self.rows.deleted, where=chosen)

    def _set_openings(self) -> None:
        targets = {
            101: 3200_00,
            102: 1850_00,
            103: 18400_00,
            104: 0,
            105: -180000_00,
            106: 42000_00,
            107: 5300_00,
            201: 2400_00,
        }
        for account_id, target in targets.items():
            self.accounts[account_id].opening = target - self._booked_sum(account_id)  # fmt: skip

    # --- derived views ---------------------------------------------------------------------

    def savings_account_id(self) -> int:
        return 108 if self.renumbered else 103

    def _booked_sum(self, account_id: int) -> int:
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

    # --- the clock -------------------------------------------------------------------------

    def advance(self, days: int) -> dict[str, Any]:
        """Move the clock; new activity appears, pending rows are booked (in place, or deleted
        and re-issued under a new id), some rows are edited. Every change bumps last_update."""
        with self.lock:
            summary = {
                "new": 0,
                "booked_in_place": 0,
                "reissued": 0,
                "deleted": 0,
                "edited": 0,
                "renumbered": None,
            }
            for _ in range(days):
                self.now += timedelta(days=1)
                self.advances += 1
                stamp = _ts(self.now)
                today = _day(self.now.date())
                if self.renumbered is None:
                    self._renumber_savings(stamp)
                    summary["renumbered"] = list(self.renumbered)
                summary.update(self._book_pending(today, stamp, summary))
                summary["new"] += self._generate_days(today, today)
                summary["edited"] += self._edit_some(today, stamp)
            self.version += 1
            return summary

    def _renumber_savings(self, stamp: int) -> None:
        old = self.accounts[103]
        old.deleted = datetime(1970, 1, 1) + timedelta(seconds=stamp)
        self.accounts[108] = Account(
            108, 1, 11, old.type, old.name, old.currency, old.iban, old.number, old.ownership, 0
        )
        self.renumbered = (103, 108)  # fmt: skip
        # The bank posts the year's interest on the account under its new Powens id.
        interest = self._merchant(Merchant("INTERETS CREDITEURS LIVRET A", "INTERETS LIVRET A"))
        day = _day(self.now.date())
        self.rows.append(
            {
                "id": np.array([self.next_id], np.int64), "account": np.array([108], np.int64),
                "day": np.array([day], np.int32), "cents": np.array([12_34], np.int64),
                "type": np.array([T["bank"]], np.int16), "merchant": np.array([interest], np.int32),
                "coming": np.zeros(1, bool), "deleted": np.full(1, -1, np.int64),
                "last_update": np.array([stamp], np.int64), "scraped": np.array([stamp], np.int64),
                "fx": np.zeros(1, np.int64),
            }
        )  # fmt: skip
        self.next_id += 1

    def _book_pending(self, today: int, stamp: int, summary: dict[str, Any]) -> dict[str, Any]:
        r = self.rows
        due = np.flatnonzero(r.coming & (r.deleted < 0) & (r.day <= today - 2))
        fractions = [_stable_fraction(self.seed, "book", int(r.id[i])) for i in due]
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
        if reissue:
            idx = np.array(reissue)
            count = len(idx)
            self.rows.append(
                {
                    "id": np.arange(self.next_id, self.next_id + count, dtype=np.int64),
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
            self.next_id += count
            summary["reissued"] += count
        return summary

    def _edit_some(self, today: int, stamp: int) -> int:
        r = self.rows
        recent = np.flatnonzero(
            (r.day >= today - 30) & (r.deleted < 0) & ~r.coming & (r.day < today)
        )
        if len(recent) == 0:
            return 0
        picks = recent[
            [
                i
                for i, row in enumerate(recent)
                if _stable_fraction(self.seed, "edit", today, int(r.id[row])) < 0.005
            ]
        ]
        if len(picks) == 0:
            picks = recent[:1]
        for index in picks:
            base = self.merchants[int(r.merchant[index])].simplified
            self.edited[int(r.id[index])] = f"{base} (modifié)"
            r.last_update[index] = stamp
        return len(picks)

    # --- users and tokens ------------------------------------------------------------------

    def initial_token(self, user_id: int) -> str:
        return hashlib.sha256(f"token|{self.seed}|{user_id}".encode()).hexdigest()[:32]

"""The fixed cast of the emulator's world: the family's accounts, its merchants, Powens' enums,
currencies and connectors. Everything here is constant; `data.py` holds what moves."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

# The world's transaction kinds (its rows keep their index). What a page calls them depends on
# the `transaction_types` switch: S3's `TransactionType` enum by default, or the names the current
# docs and integrators use (`loan_repayment` S7/S9, `card_summary` S1, `fee` S7/S9).
TYPES = [
    "card", "deferred_card", "transfer", "order", "withdrawal", "bank", "fee",
    "loan_repayment", "check", "deposit", "summary_card",
]  # fmt: skip
T = {name: i for i, name in enumerate(TYPES)}
TYPE_NAMES = {
    "spec": tuple(
        {"fee": "bank", "loan_repayment": "loan_payment"}.get(name, name) for name in TYPES
    ),
    "drifted": tuple({"summary_card": "card_summary"}.get(name, name) for name in TYPES),
}

CURRENCIES = {
    "EUR": {"id": "EUR", "name": "Euro", "symbol": "€", "precision": 2, "prefix": False, "crypto": False},
    "USD": {"id": "USD", "name": "US Dollar", "symbol": "$", "precision": 2, "prefix": True, "crypto": False},
    "ZZZ": {"id": "ZZZ", "name": "?", "symbol": "?", "precision": 2, "prefix": False, "crypto": False},
}  # fmt: skip

# S3 `Connector`: `urls` is a list of the bank's websites, `restricted` is required.
CONNECTORS = [
    {"id": 40, "uuid": "3e1b7c7a-5b1e-4b8e-9a43-2f4cf1c9b040", "name": "Banque Démo", "hidden": False,
     "charged": True, "code": "30004", "beta": False, "color": "0a5ea8", "slug": "DEMO",
     "capabilities": ["bank"], "sync_periodicity": 1, "auth_mechanism": "credentials",
     "urls": ["https://www.banque-demo.example.invalid"], "restricted": False},
    {"id": 41, "uuid": "9f0f6c0e-7f0e-4bd4-8d0c-3f0a6b1e2041", "name": "Caisse Test", "hidden": False,
     "charged": True, "code": "10278", "beta": True, "color": "d4002a", "slug": "TEST",
     "capabilities": ["bank", "bankwealth"], "sync_periodicity": 1, "auth_mechanism": "webauth",
     "urls": None, "restricted": False},
]  # fmt: skip
# Powens user id -> (connection id, connector id).
USER_CONNECTIONS = {1: (11, 40), 2: (21, 41)}


# BBAN shapes (ISO 13616 registry): how many letters then digits follow the check digits.
_BBAN = {"FR": (0, 23), "NL": (4, 10), "SE": (0, 20), "DE": (0, 18), "GB": (4, 14)}


def iban(country: str, seed: str) -> str:
    """A well-formed IBAN for `country`, fixed by `seed`: the country's length, valid ISO 7064
    mod-97 check digits (and, in France, a valid RIB key)."""
    letters, digits = _BBAN[country]
    number = int(hashlib.sha256(seed.encode()).hexdigest(), 16)
    head = "".join(chr(65 + (number >> (5 * i)) % 26) for i in range(letters))
    body = str(number)[: digits - (2 if country == "FR" else 0)]
    if country == "FR":  # bank (5) + branch (5) + account (11) + RIB key (2)
        key = 97 - (89 * int(body[:5]) + 15 * int(body[5:10]) + 3 * int(body[10:21])) % 97
        body += f"{key:02d}"
    bban = head + body
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


@dataclass(frozen=True)
class Merchant:
    wording: str  # original wording as the bank prints it
    simplified: str
    label: str | None = None  # counterparty label
    iban: str | None = None  # counterparty IBAN


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
CARD_WEIGHTS = np.array([w for _, w, _ in CARD_MERCHANTS], dtype=float)
CARD_WEIGHTS /= CARD_WEIGHTS.sum()
CARD_MEANS = np.array([m for _, _, m in CARD_MERCHANTS], dtype=float)

EMPLOYER = Merchant("VIR SEPA SALAIRE ACME SAS", "SALAIRE ACME SAS", "ACME SAS", iban("FR", "acme"))
EMPLOYER_2 = Merchant(
    "VIR SEPA SALAIRE HOPITAL ST LOUIS", "SALAIRE HOPITAL ST LOUIS", "AP-HP", iban("FR", "aphp")
)
US_EMPLOYER = Merchant("ACH PAYROLL GLOBEX CORP", "PAYROLL GLOBEX", "GLOBEX CORP", None)
MONTHLY_DEBITS: list[tuple[int, Merchant, int, float]] = [
    # (day of month, merchant, type, amount)
    (5, Merchant("PRLV SEPA EDF CLIENTS", "EDF", "EDF", iban("FR", "edf")), T["order"], 89.40),
    (8, Merchant("PRLV SEPA ENGIE", "ENGIE", "ENGIE", iban("FR", "engie")), T["order"], 54.10),
    (10, Merchant("PRLV SEPA EAU DE PARIS", "EAU DE PARIS", "EAU DE PARIS", iban("FR", "eau")), T["order"], 31.75),
    (12, Merchant("PRLV SEPA FREE MOBILE", "FREE MOBILE", "FREE MOBILE", iban("FR", "free")), T["order"], 19.99),
    (14, Merchant("PRLV SEPA NETFLIX.COM", "NETFLIX", "NETFLIX", iban("NL", "netflix")), T["order"], 13.49),
    (15, Merchant("PRLV SEPA SPOTIFY", "SPOTIFY", "SPOTIFY", iban("SE", "spotify")), T["order"], 10.99),
    (16, Merchant("PRLV SEPA MUTUELLE GENERALE", "MUTUELLE", "MUTUELLE", iban("FR", "mut")), T["order"], 62.30),
    (20, Merchant("PRLV SEPA DGFIP IMPOTS", "DGFIP IMPOTS", "DGFIP", iban("FR", "dgfip")), T["order"], 215.00),
    (25, Merchant("FRAIS TENUE DE COMPTE", "FRAIS TENUE DE COMPTE"), T["fee"], 2.50),
    (26, Merchant("COTISATION CARTE VISA PREMIER", "COTISATION CARTE"), T["fee"], 11.25),
]  # fmt: skip
MORTGAGE = Merchant("ECHEANCE PRET IMMOBILIER", "ECHEANCE PRET IMMO")
CASH = Merchant("RETRAIT DAB BNP 75011", "RETRAIT DAB")
CARD_SETTLEMENT = Merchant("RELEVE CARTE VISA PREMIER", "RELEVE CARTE")
RENT = Merchant("VIR LOYER", "LOYER", "SCI DU PARC", iban("FR", "sci"))
SAVINGS_INTEREST = Merchant("INTERETS CREDITEURS LIVRET A", "INTERETS LIVRET A")


def transfer_to(to_name: str, to_iban: str | None) -> Merchant:
    return Merchant(f"VIR SEPA VERS {to_name}", f"VIREMENT {to_name}", "FAMILLE MARTIN", to_iban)


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


MORTGAGE_TERMS = {
    "type": "mortgage", "total_amount": 250000.0, "rate": 1.45, "maturity_date": "2041-06-05",
    "nb_payments_left": 176,
}  # fmt: skip
# id: (user, connection, type, name, currency, IBAN seed or None, number, ownership, extras)
ACCOUNTS: dict[int, tuple[Any, ...]] = {
    101: (1, 11, "checking", "Compte Chèque", "EUR", "a101", "00010145678", "owner", {}),
    102: (1, 11, "checking", "Compte Joint", "EUR", "a102", "00010298765", "co-owner", {}),
    103: (1, 11, "savings", "Livret A", "EUR", "a103", "00010311223", "owner", {}),
    104: (1, 11, "card", "Carte Visa Premier", "EUR", None, "XXXX XXXX XXXX 4242", "owner",
          {"parent": 101}),
    105: (1, 11, "loan", "Prêt Immobilier", "EUR", None, "PRET000105", "co-owner",
          {"loan": MORTGAGE_TERMS}),
    106: (1, 11, "pea", "PEA", "EUR", None, "PEA0001062", "owner", {}),
    107: (1, 11, "checking", "US Checking", "USD", None, "US000107", "owner", {}),
    201: (2, 21, "checking", "Compte Courant", "EUR", "a201", "00020133445", "owner", {}),
}  # fmt: skip
# Balances the history ends on, in cents; each opening balance is derived from them.
TARGET_BALANCES = {
    101: 3200_00, 102: 1850_00, 103: 18400_00, 104: 0, 105: -180000_00, 106: 42000_00,
    107: 5300_00, 201: 2400_00,
}  # fmt: skip


def family_accounts() -> dict[int, Account]:
    """The accounts at the start of the clock (opening balances still zero)."""
    accounts = {}
    for account_id, row in ACCOUNTS.items():
        user, connection, kind, name, currency, iban_seed, number, ownership, extras = row
        account_iban = iban("FR", iban_seed) if iban_seed else None
        accounts[account_id] = Account(
            account_id, user, connection, kind, name, currency, account_iban, number, ownership, 0,
            parent=extras.get("parent"), loan=dict(extras["loan"]) if "loan" in extras else None,
        )  # fmt: skip
    return accounts

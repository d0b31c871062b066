"""The merchant directory: businesses the pipeline may name (keyword -> merchant name).

It is a dbt seed (`dbt_project/seeds/merchant_directory.csv`) so the marts name payees with it in
SQL; the same file tells the knowledge space's PII scan which names are public businesses, not
people. Keywords are matched on normalised wordings (see `rules.normalise`).
"""

from __future__ import annotations

import csv
import re
from functools import cache

from pfo_pipeline import settings

DIRECTORY = settings.DBT_PROJECT_DIR / "seeds" / "merchant_directory.csv"


@cache
def merchant_directory() -> dict[str, str]:
    with DIRECTORY.open(newline="") as handle:
        return {row["keyword"].strip(): row["merchant"].strip() for row in csv.DictReader(handle)}


def merchant_names_pattern() -> str:
    """A regular expression (RE2) matching any merchant name or payee key slug as whole words,
    in lower case."""
    names = set(merchant_directory().values())
    slugs = {re.sub(r"[^a-z0-9]+", "-", n.lower()) for n in names}
    alternatives = sorted({n.lower() for n in names} | slugs, key=len, reverse=True)

    def whole_word(name: str) -> str:
        escaped = re.sub(r"([\\.^$|?*+()\[\]{}])", r"\\\1", name)
        before = r"\b" if name[0].isalnum() else ""
        after = r"\b" if name[-1].isalnum() else ""
        return before + escaped + after

    return "|".join(whole_word(a) for a in alternatives)

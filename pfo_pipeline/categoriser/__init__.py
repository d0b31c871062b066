"""Fills `standardized_category` with readable rules (pure: no lake access). Internal transfers
and user overrides are writes to the ledger: `ledger.transfers` and `ledger.overrides`."""

from pfo_pipeline.categoriser.rules import CATEGORIES, categorise_frame, load_rules

__all__ = ["CATEGORIES", "categorise_frame", "load_rules"]

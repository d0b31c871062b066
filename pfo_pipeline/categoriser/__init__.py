"""Fills `standardized_category`: readable rules, internal transfers from both legs, overrides."""

from pfo_pipeline.categoriser.overrides import apply_category_overrides, set_category_override
from pfo_pipeline.categoriser.rules import CATEGORIES, categorise_frame, load_rules
from pfo_pipeline.categoriser.transfers import mark_internal_transfers

__all__ = [
    "CATEGORIES",
    "apply_category_overrides",
    "categorise_frame",
    "load_rules",
    "mark_internal_transfers",
    "set_category_override",
]

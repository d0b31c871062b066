"""What each dbt test checks, in a sentence, for the asset check it becomes in Dagster.

dagster-dbt takes a check's description only from the test's `meta.description`, so the UI said
"No description provided" under every dbt check. Generic tests are described from their name and
arguments; singular tests (`tests/*.sql`) by the comment that opens their SQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_REF = re.compile(r"ref\(['\"]([^'\"]+)['\"]\)")


def describe_dbt_test(test: Mapping[str, Any]) -> str | None:
    """One sentence for a dbt test node of the manifest (None when nothing can be said)."""
    metadata = test.get("test_metadata") or {}
    if metadata:
        return _describe_generic(metadata.get("name", ""), metadata.get("kwargs") or {})
    return _leading_comment(test.get("raw_code") or "")


def _describe_generic(name: str, kwargs: Mapping[str, Any]) -> str | None:
    column = f"`{kwargs.get('column_name')}`"
    if name == "unique":
        return f"dbt test: {column} is unique."
    if name == "not_null":
        return f"dbt test: {column} is never null."
    if name == "accepted_values":
        values = ", ".join(str(v) for v in kwargs.get("values") or [])
        return f"dbt test: {column} is one of {values}."
    if name == "relationships":
        target = _REF.search(str(kwargs.get("to", "")))
        table = target.group(1) if target else str(kwargs.get("to"))
        return f"dbt test: every {column} exists as `{kwargs.get('field')}` in `{table}`."
    if name.endswith("unique_combination"):
        columns = ", ".join(kwargs.get("columns") or [])
        return f"dbt test: one row per ({columns})."
    return f"dbt test `{name}`." if name else None


def _leading_comment(sql: str) -> str | None:
    """The `--` comment lines a singular test's SQL starts with (after its config block)."""
    lines: list[str] = []
    for line in sql.splitlines():
        stripped = line.strip()
        if stripped.startswith("--"):
            lines.append(stripped.removeprefix("--").strip())
        elif lines or (stripped and not stripped.startswith("{{")):
            break
    return " ".join(lines) or None

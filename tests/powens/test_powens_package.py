"""The Powens client package keeps to one concern per module, none over 400 lines (the guide's
limit; `models.py` was 555 with the scalar, record and twin transaction parsers together)."""

from __future__ import annotations

from pathlib import Path

import pfo_pipeline.powens

PACKAGE = Path(pfo_pipeline.powens.__file__).parent
MAX_MODULE_LINES = 400


def test_no_module_of_the_client_is_over_400_lines() -> None:
    sizes = {path.name: len(path.read_text().splitlines()) for path in PACKAGE.glob("*.py")}
    assert len(sizes) > 10
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}

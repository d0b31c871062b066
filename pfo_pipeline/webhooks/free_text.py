"""What the inbox may keep of text a bank page or a webhook sends: codes, never prose.

An OAuth `error` (`access_denied`) or a Powens connection `state` (`wrongpass`, `SCARequired`)
is a code: kept when it looks like one. `error_description` and any other free text can name a
person ("Compte de Jean Dupont refusé") or carry an IBAN: only its length is kept.
"""

from __future__ import annotations

import re
from typing import Any

# OAuth 2.0 error codes and Powens states: identifiers, no spaces, no digits runs of account size.
CODE = re.compile(r"[A-Za-z][A-Za-z_.\-]{0,63}")
NOT_A_CODE = "[redacted: not a code]"


def code_or_redacted(value: Any) -> str | None:
    """The code as sent when it is one; a fixed marker otherwise (None stays None)."""
    if value is None:
        return None
    text = str(value)
    return text if CODE.fullmatch(text) else NOT_A_CODE


def redacted_text(value: Any) -> str | None:
    """Free text reduced to its length: nothing of what it said is kept."""
    if value is None:
        return None
    text = str(value)
    return f"[redacted: {len(text)} characters]" if text else ""


def id_or_none(value: Any) -> int | str | None:
    """A Powens id (an integer, or digits as a string); anything else is dropped."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) <= 20:
        return value
    return None

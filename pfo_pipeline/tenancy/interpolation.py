"""`${NAME}` and `${NAME:-default}` in the tenants file's non-secret `config` values.

So one file serves several machines without editing it: the sample tenants find the emulator at
`${PFO_POWENS_BASE_URL:-http://127.0.0.1:8765/2.0}`. Only values under a binding's `config` are
interpolated (never `secrets`, which hold variable names, nor ids). The rule is the shell's: the
default applies when the variable is unset or empty. A malformed reference, or an unset variable
without a default, is a problem naming the key and the variable (never a variable's value).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_INNER = re.compile(r"^(?P<name>[A-Z_][A-Z0-9_]*)(?::-(?P<default>.*))?$", re.DOTALL)


class InterpolationError(ValueError):
    """A `${…}` reference that cannot be resolved; the message names the key path."""


def interpolate(text: str, where: str, environ: Mapping[str, str] | None = None) -> str:
    """`text` with every `${NAME}` / `${NAME:-default}` replaced from `environ` (os.environ)."""
    env = os.environ if environ is None else environ

    def replace(match: re.Match[str]) -> str:
        inner = _INNER.match(match.group(1))
        if inner is None:
            raise InterpolationError(
                f"{where}: malformed reference ${{{match.group(1)[:40]}}}: write ${{NAME}} or "
                "${NAME:-default}, NAME in capitals, digits and _"
            )
        name, default = inner.group("name"), inner.group("default")
        value = env.get(name) or None
        if value is not None:
            return value
        if default is not None:
            return default
        raise InterpolationError(
            f"{where}: environment variable {name} is not set and the reference has no default "
            f"(set it, or write ${{{name}:-default}})"
        )

    resolved = _REFERENCE.sub(replace, text)
    if "${" in _REFERENCE.sub("", text):
        raise InterpolationError(f"{where}: unclosed ${{ (write ${{NAME}} or ${{NAME:-default}})")
    return resolved


def interpolate_bindings(raw_tenant: Any, environ: Mapping[str, str] | None = None) -> Any:
    """A tenant mapping whose bindings' `config` string values are interpolated (a copy; other
    keys and shapes are left for validation to judge)."""
    if not isinstance(raw_tenant, dict) or not isinstance(raw_tenant.get("bindings"), dict):
        return raw_tenant
    bindings = {}
    for slot, binding in raw_tenant["bindings"].items():
        if isinstance(binding, dict) and isinstance(binding.get("config"), dict):
            config = {
                key: interpolate(value, f"bindings.{slot}.config.{key}", environ)
                if isinstance(value, str)
                else value
                for key, value in binding["config"].items()
            }
            binding = {**binding, "config": config}
        bindings[slot] = binding
    return {**raw_tenant, "bindings": bindings}

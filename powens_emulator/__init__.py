"""A Powens API v2.0 emulator on loopback: the upstream for the demo, tests and benchmarks.

Self-contained: it imports nothing from the rest of `pfo_pipeline` (it signs its webhooks with its
own implementation of Powens' scheme, so the product's verifier is checked against it).

The names below are imported when first used: `pfo --help` lists `pfo emulator` by importing its
command module, which must not pay for the server (0.25 s) just to describe itself.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from powens_emulator.faults import FaultConfig
    from powens_emulator.runner import EmulatorConfig, EmulatorHandle, start_emulator

__all__ = ["EmulatorConfig", "EmulatorHandle", "FaultConfig", "start_emulator"]
_HOMES = {
    "FaultConfig": "powens_emulator.faults",
    "EmulatorConfig": "powens_emulator.runner",
    "EmulatorHandle": "powens_emulator.runner",
    "start_emulator": "powens_emulator.runner",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

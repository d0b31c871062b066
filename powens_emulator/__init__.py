"""A Powens API v2.0 emulator on loopback: the upstream for the demo, tests and benchmarks.

Self-contained: it imports nothing from the rest of `pfo_pipeline` (it signs its webhooks with its
own implementation of Powens' scheme, so the product's verifier is checked against it).
"""

from powens_emulator.faults import FaultConfig
from powens_emulator.runner import EmulatorConfig, EmulatorHandle, start_emulator

__all__ = ["EmulatorConfig", "EmulatorHandle", "FaultConfig", "start_emulator"]

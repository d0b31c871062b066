"""A Powens API v2.0 emulator on loopback: the upstream for the demo, tests and benchmarks."""

from pfo_pipeline.emulator.app import FaultConfig
from pfo_pipeline.emulator.runner import EmulatorConfig, EmulatorHandle, start_emulator

__all__ = ["EmulatorConfig", "EmulatorHandle", "FaultConfig", "start_emulator"]

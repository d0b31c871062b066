"""Telemetry events of the original design, redacted before they are logged or stored."""

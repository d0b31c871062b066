"""How patient a Powens client is, declared once: every client, the Dagster resource and the
command line read these defaults from here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClientOptions:
    """Request timeout, attempts per call, and the back-off between attempts."""

    timeout_s: float = 15.0
    max_attempts: int = 5
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 10.0
    max_retry_after_s: float = 60.0  # a longer `Retry-After` is capped to this

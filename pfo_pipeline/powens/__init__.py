"""Read-only client for the Powens API v2.0: `client` (endpoints) over `transport` (httpx,
retries, shared back-off), `auth` (token renewal), `pagination` (next links, read ahead),
`transaction_pages` (a parsed page), `responses` (errors from answers) and `errors`. The typed
records are `models`, parsed field by field by `scalars`, `record_parsing` and
`transaction_parsing` (the sync's hot path, with its fast path)."""

from pfo_pipeline.powens.client import PowensClient
from pfo_pipeline.powens.errors import (
    PowensAuthError,
    PowensError,
    PowensInvalidResponseError,
    PowensNotFoundError,
    PowensParseError,
    PowensRateLimitError,
    PowensRequestError,
    PowensUnavailableError,
)
from pfo_pipeline.powens.transaction_pages import TransactionPage

__all__ = [
    "PowensAuthError",
    "PowensClient",
    "PowensError",
    "PowensInvalidResponseError",
    "PowensNotFoundError",
    "PowensParseError",
    "PowensRateLimitError",
    "PowensRequestError",
    "PowensUnavailableError",
    "TransactionPage",
]

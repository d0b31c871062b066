"""Read-only client for the Powens API v2.0: `client` (endpoints) over `transport` (httpx,
retries, shared back-off), `auth` (token renewal), `pagination` (next links, pages), `responses`
(errors from answers) and `errors`; typed parsing in `models`."""

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
from pfo_pipeline.powens.pagination import TransactionPage

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

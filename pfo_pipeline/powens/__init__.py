"""Read-only client for the Powens API v2.0: typed parsing, retries, pagination, errors."""

from pfo_pipeline.powens.client import PowensClient, TransactionBatch, TransactionPage
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
    "TransactionBatch",
    "TransactionPage",
]

"""One small error hierarchy: callers branch on the kind, people read which call failed and why.

Messages carry the operation, HTTP status, Powens `code` and `request_id`; never a token, a URL query
with secrets, or a response body that could hold personal data.
"""

from __future__ import annotations


class PowensError(Exception):
    """A Powens call failed; `kind` names the failure class for metrics and branching."""

    kind = "error"

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.operation = operation
        self.status = status
        self.code = code
        self.request_id = request_id
        self.reason = message
        details = ", ".join(
            f"{name}={value}"
            for name, value in (("status", status), ("code", code), ("request_id", request_id))
            if value is not None
        )
        suffix = f" ({details})" if details else ""
        super().__init__(f"Powens {operation} failed: {message}{suffix}")


class PowensAuthError(PowensError):
    """401/403, or a token that could not be renewed."""

    kind = "auth"


class PowensRateLimitError(PowensError):
    """429 still returned after the bounded retries."""

    kind = "rate_limit"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class PowensNotFoundError(PowensError):
    """404: the user, account or route does not exist."""

    kind = "not_found"


class PowensUnavailableError(PowensError):
    """5xx, timeouts and connection failures that outlived the retries."""

    kind = "unavailable"


class PowensUnreachableError(PowensUnavailableError):
    """No connection could be opened (refused, name not resolved, no route): a wrong `base_url`
    or Powens down. Retried a few times within seconds, then permanent for the run: a step retry
    minutes later would only hide the address that failed."""

    kind = "unreachable"


class PowensInvalidResponseError(PowensError):
    """A body that is not the JSON the API documents (HTML, garbage, missing keys, bad links)."""

    kind = "invalid_response"


class PowensRequestError(PowensError):
    """Any other 4xx: the request itself was refused (bad parameter, conflict...)."""

    kind = "request"


NO_ACCOUNT = "noaccount"


def is_no_account(exc: BaseException) -> bool:
    """A 4xx whose Powens `code` is `noAccount`: a user with no bank account yet. The spec answers
    400 (S3 `NoAccountError`), a sandbox-based client mocks 409 (S8); the code decides, compared
    case-insensitively (facts §9-§10: codes drift in case; parse `code`, not the status)."""
    return (
        isinstance(exc, PowensError)
        and isinstance(exc.code, str)
        and exc.code.lower() == NO_ACCOUNT
        and exc.status is not None
        and 400 <= exc.status < 500
    )


class PowensParseError(ValueError):
    """One record could not be parsed; names the field and why, never the value itself."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")

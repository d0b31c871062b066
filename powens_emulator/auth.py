"""Powens user tokens: the permanent tokens the emulator knows, renewals, temporary codes, and the
`/auth/renew` body (JSON or a urlencoded form, as Powens takes both)."""

from __future__ import annotations

import secrets
import threading
from typing import Any
from urllib.parse import parse_qsl

import orjson


class TokenStore:
    """Which bearer token belongs to which user, and how often each was used."""

    def __init__(self, initial: dict[str, int]) -> None:
        self.lock = threading.Lock()
        self.tokens: dict[str, int] = dict(initial)
        self.codes: dict[str, int] = {}
        self.uses: dict[str, int] = {}

    def token_for(self, user_id: int) -> str:
        """A valid token of the user (issuing one if none is left)."""
        with self.lock:
            for token, owner in self.tokens.items():
                if owner == user_id:
                    return token
            return self._issue(user_id)

    def renew(self, user_id: int, *, revoke_previous: bool) -> str:
        with self.lock:
            if revoke_previous:
                self._revoke(user_id)
            return self._issue(user_id)

    def owner(self, token: str | None) -> int | None:
        with self.lock:
            return self.tokens.get(token) if token else None

    def use(self, token: str) -> int:
        """Count a use of the token; returns how often it was used before."""
        with self.lock:
            used = self.uses.get(token, 0)
            self.uses[token] = used + 1
            return used

    def revoke(self, user_id: int) -> None:
        with self.lock:
            self._revoke(user_id)

    def new_code(self, user_id: int) -> str:
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = user_id
        return code

    def _issue(self, user_id: int) -> str:
        token = secrets.token_urlsafe(24)[:32]
        self.tokens[token] = user_id
        return token

    def _revoke(self, user_id: int) -> None:
        for known in [t for t, u in self.tokens.items() if u == user_id]:
            del self.tokens[known]


def bearer(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer …` header, None when there is none."""
    return authorization[7:] if authorization.lower().startswith("bearer ") else None


def renew_body(raw: bytes) -> dict[str, Any]:
    """The `/auth/renew` body as a dict; ValueError when it is neither JSON nor a form, or not
    an object."""
    try:
        # Starlette's form parser would need python-multipart for no gain: the stdlib parses it.
        body = (
            orjson.loads(raw)
            if raw.strip()[:1] in (b"{", b"[")
            else dict(parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=False))
        )
    except (orjson.JSONDecodeError, UnicodeDecodeError):
        raise ValueError("Body is neither JSON nor a form") from None
    if not isinstance(body, dict):
        raise ValueError("Body is not an object")
    return body

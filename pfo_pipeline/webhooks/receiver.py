"""`pfo webhooks serve`: receives Powens webhooks and the bank-connect callback.

POST /webhooks/powens/{connection_id}/{event_type}, checked in this order, nothing recorded unless
every check passes:
1. size: a body over `max_body_bytes` is 413, refused on `Content-Length` before reading, otherwise
   counted while streamed (an unsigned flood must not grow the receiver's memory);
2. event name: `^[A-Z_]{1,64}$` or 400, before anything from the path reaches a log line;
3. signature: the connection's `webhook_secret` verifies `BI-Signature` (constant time, stale dates
   refused); an unknown connection is answered exactly like a bad signature (401, same body), so
   connection ids cannot be enumerated;
4. body: `application/json` holding a JSON object, or 400.
Accepted events land in the inbox and the answer is an immediate 200.
GET /connect/callback: the Powens webview's redirect; `state` must be one `pfo connect` issued, not
expired, and is used up only by a callback that is accepted.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pfo_pipeline.tenancy.config import TenantConfig, load_tenants, resolve_secret
from pfo_pipeline.webhooks.free_text import code_or_redacted, id_or_none, redacted_text
from pfo_pipeline.webhooks.inbox import DEFAULT_STATE_TTL, Inbox
from pfo_pipeline.webhooks.signature import verify

logger = logging.getLogger("pfo_pipeline.webhooks")
CONNECT_EVENT = "CONNECT_CALLBACK"
# Powens webhooks carry one connection's changes: tens of KB. 256 KiB is generous.
DEFAULT_MAX_BODY_BYTES = 256 * 1024
# Powens' event names (CONNECTION_SYNCED, ACCOUNT_SYNCED, ...) all fit; fullmatch, so no trailing \n.
EVENT_NAME = re.compile(r"[A-Z_]{1,64}")
JSON_MEDIA_TYPE = "application/json"
# One answer for an unknown connection and a bad signature: the two must be indistinguishable.
REFUSED = {"error": "invalid signature"}


@dataclass(frozen=True)
class _Binding:
    tenant: TenantConfig
    secret: str | None


def summarise(event_type: str, payload: Any) -> dict[str, Any]:
    """Ids, codes and counts only: the inbox never keeps wordings, names, IBANs or balances."""
    if not isinstance(payload, dict):
        return {}
    connection = payload.get("connection") if isinstance(payload.get("connection"), dict) else {}
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    accounts = connection.get("accounts") if isinstance(connection.get("accounts"), list) else []
    if event_type == "ACCOUNT_SYNCED":
        accounts = [payload]
    summary: dict[str, Any] = {
        "user_id": id_or_none(user.get("id", payload.get("id_user"))),
        "powens_connection_id": id_or_none(connection.get("id", payload.get("id_connection"))),
        "state": code_or_redacted(connection.get("state")),
        "account_ids": [
            account_id
            for a in accounts
            if isinstance(a, dict) and (account_id := id_or_none(a.get("id"))) is not None
        ],
        "transactions": sum(
            len(a.get("transactions") or []) for a in accounts if isinstance(a, dict)
        ),
    }
    return {k: v for k, v in summary.items() if v not in (None, [])}


async def read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None once it is known to exceed `limit` bytes (the rest is never read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def is_json_media_type(content_type: str | None) -> bool:
    """`application/json`, parameters such as `; charset=utf-8` allowed."""
    return (content_type or "").partition(";")[0].strip().lower() == JSON_MEDIA_TYPE


def create_receiver(
    inbox: Inbox,
    tenants: dict[str, TenantConfig] | None = None,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    state_ttl: timedelta = DEFAULT_STATE_TTL,
) -> Starlette:
    tenants = tenants if tenants is not None else load_tenants()
    routes: dict[str, _Binding] = {}
    for tenant in tenants.values():
        binding = tenant.primary_open_banking
        if binding is not None:
            routes[binding.connection_id] = _Binding(
                tenant, resolve_secret(binding.secrets.webhook_secret)
            )
    # An unknown connection still costs one HMAC, so timing does not tell it from a known one.
    decoy_secret = secrets.token_urlsafe(32)

    async def webhook(request: Request) -> Response:
        connection_id = request.path_params["connection_id"]
        event_type = request.path_params["event_type"]
        try:
            body = await read_capped(request, max_body_bytes)
        except ClientDisconnect:
            return Response(status_code=400)
        if body is None:
            # `Connection: close`: uvicorn drops the socket rather than draining the rest.
            return JSONResponse(
                {"error": f"body larger than {max_body_bytes} bytes"},
                status_code=413,
                headers={"Connection": "close"},
            )
        if not EVENT_NAME.fullmatch(event_type):
            logger.warning(
                "webhook refused for %r/%r: not an event name", connection_id, event_type
            )
            return JSONResponse({"error": "not a Powens event name"}, status_code=400)
        route = routes.get(connection_id)
        verdict = verify(
            route.secret if route else decoy_secret,
            request.method,
            request.url.path,
            request.headers.get("bi-signature-date"),
            body,
            request.headers.get("bi-signature"),
        )
        if route is None or not verdict.ok:
            reason = "unknown connection" if route is None else verdict.reason
            logger.warning("webhook refused for %r/%r: %s", connection_id, event_type, reason)
            return JSONResponse(REFUSED, status_code=401)
        if not is_json_media_type(request.headers.get("content-type")):
            return JSONResponse(
                {"error": f"content type is not {JSON_MEDIA_TYPE}"}, status_code=400
            )
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        if not isinstance(payload, dict):
            return JSONResponse({"error": "body is not a JSON object"}, status_code=400)
        created = inbox.record(
            route.tenant.tenant_id, connection_id, event_type, body, summarise(event_type, payload)
        )
        return JSONResponse({"status": "accepted", "duplicate": not created})

    async def connect_callback(request: Request) -> Response:
        params = request.query_params
        error = params.get("error")
        powens_connection = params.get("connection_id")
        if not error and not powens_connection:
            # Refused before the state is touched: the real callback can still use it.
            return JSONResponse({"error": "connection_id missing"}, status_code=400)
        if powens_connection and id_or_none(powens_connection) is None:
            return JSONResponse({"error": "connection_id is not a Powens id"}, status_code=400)
        tenant_id = inbox.use_connect_state(params.get("state", ""), state_ttl)
        if tenant_id is None:
            return JSONResponse(
                {"error": "unknown, expired or already used state"}, status_code=400
            )
        tenant = tenants.get(tenant_id)
        binding = tenant.primary_open_banking if tenant else None
        connection_id = binding.connection_id if binding else "unbound"
        if error:
            # Free text from the bank's page can name the account holder or carry an IBAN: the
            # inbox keeps the error code and only the description's length.
            summary = {
                "error": code_or_redacted(error),
                "error_description": redacted_text(params.get("error_description", "")),
            }
            inbox.record(tenant_id, connection_id, "CONNECT_ERROR", orjson.dumps(summary), summary)
            return JSONResponse(
                {
                    "status": "error",
                    "error": summary["error"],
                    "description": summary["error_description"],
                },
                status_code=400,
            )
        summary = {"powens_connection_id": powens_connection}
        inbox.record(tenant_id, connection_id, CONNECT_EVENT, orjson.dumps(summary), summary)
        return JSONResponse(
            {
                "status": "connected",
                "tenant_id": tenant_id,
                "powens_connection_id": powens_connection,
            }
        )

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "events": inbox.count()})

    return Starlette(
        routes=[
            Route("/webhooks/powens/{connection_id}/{event_type}", webhook, methods=["POST"]),
            Route("/connect/callback", connect_callback, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ]
    )

"""`pfo webhooks serve`: receives Powens webhooks and the bank-connect callback.

POST /webhooks/powens/{connection_id}/{event_type}: the connection's `webhook_secret` verifies
`BI-Signature` (constant time, stale dates refused); accepted events land in the inbox and the
answer is an immediate 200. Bad signature -> 401 and nothing recorded; malformed JSON -> 400.
GET /connect/callback: the Powens webview's redirect; `state` must be one `pfo connect` issued.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pfo_pipeline.tenancy.config import TenantConfig, load_tenants, resolve_secret
from pfo_pipeline.webhooks.inbox import Inbox
from pfo_pipeline.webhooks.signature import verify

logger = logging.getLogger("pfo_pipeline.webhooks")
CONNECT_EVENT = "CONNECT_CALLBACK"


@dataclass(frozen=True)
class _Binding:
    tenant: TenantConfig
    secret: str | None


def summarise(event_type: str, payload: Any) -> dict[str, Any]:
    """Ids and counts only: the inbox never keeps wordings, IBANs or balances."""
    if not isinstance(payload, dict):
        return {}
    connection = payload.get("connection") if isinstance(payload.get("connection"), dict) else {}
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    accounts = connection.get("accounts") if isinstance(connection.get("accounts"), list) else []
    if event_type == "ACCOUNT_SYNCED":
        accounts = [payload]
    summary: dict[str, Any] = {
        "user_id": user.get("id", payload.get("id_user")),
        "powens_connection_id": connection.get("id", payload.get("id_connection")),
        "state": connection.get("state"),
        "account_ids": [a.get("id") for a in accounts if isinstance(a, dict)],
        "transactions": sum(
            len(a.get("transactions") or []) for a in accounts if isinstance(a, dict)
        ),
    }
    return {k: v for k, v in summary.items() if v not in (None, [])}


def create_receiver(inbox: Inbox, tenants: dict[str, TenantConfig] | None = None) -> Starlette:
    tenants = tenants if tenants is not None else load_tenants()
    routes: dict[str, _Binding] = {}
    for tenant in tenants.values():
        binding = tenant.primary_open_banking
        if binding is not None:
            routes[binding.connection_id] = _Binding(
                tenant, resolve_secret(binding.secrets.webhook_secret)
            )

    async def webhook(request: Request) -> Response:
        connection_id = request.path_params["connection_id"]
        event_type = request.path_params["event_type"]
        body = await request.body()
        route = routes.get(connection_id)
        if route is None:
            return JSONResponse({"error": "unknown connection"}, status_code=404)
        verdict = verify(
            route.secret,
            request.method,
            request.url.path,
            request.headers.get("bi-signature-date"),
            body,
            request.headers.get("bi-signature"),
        )
        if not verdict.ok:
            logger.warning(
                "webhook refused for %s/%s: %s", connection_id, event_type, verdict.reason
            )
            return JSONResponse({"error": "invalid signature"}, status_code=401)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        created = inbox.record(
            route.tenant.tenant_id, connection_id, event_type, body, summarise(event_type, payload)
        )
        return JSONResponse({"status": "accepted", "duplicate": not created})

    async def connect_callback(request: Request) -> Response:
        params = request.query_params
        tenant_id = inbox.use_connect_state(params.get("state", ""))
        if tenant_id is None:
            return JSONResponse({"error": "unknown or already used state"}, status_code=400)
        binding = tenants[tenant_id].primary_open_banking
        connection_id = binding.connection_id if binding else "unbound"
        if params.get("error"):
            summary = {
                "error": params["error"],
                "error_description": params.get("error_description", ""),
            }
            inbox.record(tenant_id, connection_id, "CONNECT_ERROR", orjson.dumps(summary), summary)
            return JSONResponse(
                {
                    "status": "error",
                    "error": params["error"],
                    "description": summary["error_description"],
                },
                status_code=400,
            )
        powens_connection = params.get("connection_id")
        if not powens_connection:
            return JSONResponse({"error": "connection_id missing"}, status_code=400)
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

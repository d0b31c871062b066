"""The Powens API v2.0 routes the emulator serves, and the Starlette app around them."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from powens_emulator import control
from powens_emulator.app import EmulatorApp
from powens_emulator.auth import renew_body
from powens_emulator.catalog import CONNECTORS, USER_CONNECTIONS
from powens_emulator.churn import backdated_import, churn, late_change
from powens_emulator.clock import day_number
from powens_emulator.middleware import PowensClockDate, PowensLatency
from powens_emulator.pages import ListShape, QueryError, TransactionQuery, page_body
from powens_emulator.shaping import accounts_json, connection_json, json_response
from powens_emulator.variants import Variant

NO_ACCOUNT = "No bank account is available."  # S3 `NoAccountError`

PREFIX = "/2.0"


class PowensRoutes:
    """Handlers of the Powens routes over one `EmulatorApp`."""

    def __init__(self, emulator: EmulatorApp) -> None:
        self.e = emulator

    async def renew(self, request: Request) -> Response:
        e = self.e
        raw = await request.body()
        fault = await e.transport_faults()
        if fault is not None:
            return fault
        try:
            body = renew_body(raw)
        except ValueError as exc:
            return e.error(400, "invalidValue", str(exc))
        if body.get("client_id") != e.client_id or body.get("client_secret") != e.client_secret:
            return e.error(401, "invalidClient", "Unknown client or wrong secret")
        try:
            user = int(body.get("id_user"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return e.error(400, "missingParameter", "id_user is required")
        if user not in USER_CONNECTIONS:
            return e.error(404, "notFound", "User not found")
        revoke = str(body.get("revoke_previous")).lower() in ("true", "1")
        token = e.tokens.renew(user, revoke_previous=revoke)
        return json_response({"access_token": token, "token_type": "Bearer"})

    async def token_code(self, request: Request) -> Response:
        user = await self.e.guard(request)
        if isinstance(user, Response):
            return user
        code = self.e.tokens.new_code(user)
        return json_response(
            {"code": code, "type": "temporary", "access": "single", "expires_in": 1800}
        )

    async def user(self, request: Request) -> Response:
        user = await self.e.guard(request)
        if isinstance(user, Response):
            return user
        body = {"id": user, "signin": "2023-01-15 10:00:00", "platform": "sharedAccess"}
        return json_response(Variant.of(self.e.faults).reshape("user", body, user))

    async def connectors(self, request: Request) -> Response:
        fault = await self.e.transport_faults()
        variant = Variant.of(self.e.faults)
        items = [variant.reshape("connector", dict(c), c["id"]) for c in CONNECTORS]
        return fault or json_response({"connectors": items, "total": len(items)})

    async def connections(self, request: Request) -> Response:
        e = self.e
        user = await e.guard(request)
        if isinstance(user, Response):
            return user
        expand = "connector" in request.query_params.get("expand", "")
        state = e.faults.connection_states.get(user)
        variant = Variant.of(e.faults)
        connection = connection_json(e.world, user, state, expand=expand, variant=variant)
        return json_response({"connections": [connection], "total": 1})

    async def accounts(self, request: Request) -> Response:
        e = self.e
        user = await e.guard(request)
        if isinstance(user, Response):
            return user
        if user in e.faults.no_accounts:
            return e.error(e.faults.no_accounts[user], "noAccount", NO_ACCOUNT)
        world = e.world
        with world.lock:
            body = accounts_json(
                world,
                user,
                include_all="all" in request.query_params,
                variant=Variant.of(e.faults),
            )
        return json_response(body)

    async def transactions(self, request: Request) -> Response:
        """`GET /users/{u}/transactions` and its per-account alias
        `GET /users/{u}/accounts/{id}/transactions` (same parameters, one account's rows)."""
        e = self.e
        user = await e.guard(request)
        if isinstance(user, Response):
            return user
        faults = e.faults
        if user in faults.no_accounts:
            return e.error(faults.no_accounts[user], "noAccount", NO_ACCOUNT)
        account = None
        if "account" in request.path_params:
            account = _user_account(e, user, request.path_params["account"])
            if account is None:
                return e.error(404, "notFound", "Account not found")
        params = request.query_params
        world = e.world
        month_ago = None
        if faults.month_window_without_min_date:  # S2: "the last month" when no min_date
            month_ago = day_number(world.now.date()) - 30
        try:
            query = TransactionQuery.from_params(params, user, account, default_min_day=month_ago)
        except QueryError as exc:
            return e.error(400, exc.code, str(exc))
        with e.lock:
            e.listings_served += 1
            served = e.listings_served
        if query.offset > 0 and faults.churn_per_page:
            churn(world, faults.churn_per_page)
        if served >= 2 and faults.backdated_import_rows and e.once("import"):
            backdated_import(world, faults.backdated_import_rows, faults.backdated_import_s)
        if faults.late_change_on_last_page and query.offset > 0:
            with world.lock:
                last = query.offset + query.limit >= len(e.index.matching(query.filter))
            if last and e.once("late change"):
                late_change(world)

        def href(offset: int) -> str:
            return str(request.url.include_query_params(**{**dict(params), "offset": str(offset)}))

        shape = ListShape(
            links=not faults.lists_without_links, total=not faults.lists_without_total
        )
        with world.lock:
            body = page_body(
                e.index,
                query,
                faults.rate_malformed,
                str(request.url),
                href,
                Variant.of(faults),
                shape,
            )
        return Response(body, media_type="application/json")


def _user_account(emulator: EmulatorApp, user: int, segment: str) -> int | None:
    """The account id of the path when it is one of the user's accounts."""
    try:
        account_id = int(segment)
    except ValueError:
        return None
    account = emulator.world.accounts.get(account_id)
    return account_id if account is not None and account.user_id == user else None


def create_app(emulator: EmulatorApp) -> Starlette:
    powens = PowensRoutes(emulator)
    users = f"{PREFIX}/users/{{user}}"
    routes = [
        Route(f"{PREFIX}/auth/renew", powens.renew, methods=["POST"]),
        Route(f"{PREFIX}/auth/token/code", powens.token_code, methods=["GET"]),
        Route(f"{PREFIX}/connectors", powens.connectors, methods=["GET"]),
        Route(users, powens.user, methods=["GET"]),
        Route(f"{users}/connections", powens.connections, methods=["GET"]),
        Route(f"{users}/accounts", powens.accounts, methods=["GET"]),
        Route(f"{users}/transactions", powens.transactions, methods=["GET"]),
        Route(f"{users}/accounts/{{account}}/transactions", powens.transactions, methods=["GET"]),
        *control.routes(emulator, f"{PREFIX}/__emulator"),
    ]
    middleware = [
        Middleware(PowensClockDate, world=emulator.world),
        Middleware(
            PowensLatency,
            traffic=emulator.traffic,
            delay_ms=emulator.next_delay_ms,
            sleep=lambda: emulator.sleep,
        ),
    ]
    return Starlette(routes=routes, middleware=middleware)

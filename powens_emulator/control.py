"""Control routes under `/2.0/__emulator/` (not Powens'): move the clock, set faults and latency,
read the state and the traffic the Powens routes saw."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from powens_emulator.app import EmulatorApp
from powens_emulator.clock import fmt_now
from powens_emulator.faults import FaultConfig, FaultConfigError
from powens_emulator.shaping import json_response


def routes(emulator: EmulatorApp, prefix: str) -> list[Route]:
    async def advance(request: Request) -> Response:
        body = orjson.loads(await request.body() or b"{}")
        return json_response(emulator.advance(int(body.get("days", 1))))

    async def faults(request: Request) -> Response:
        """Replace the faults; a bad setting is a 400 naming it, and the old faults stay."""
        try:
            new = FaultConfig.from_json(orjson.loads(await request.body() or b"{}"))
        except orjson.JSONDecodeError:
            return json_response(
                {"code": "invalidValue", "key": "body", "description": "not JSON"}, 400
            )
        except FaultConfigError as exc:
            return json_response(
                {"code": "invalidValue", "key": exc.key, "description": str(exc)}, 400
            )
        emulator.set_faults(new)
        return json_response(new.to_json())

    async def state(request: Request) -> Response:
        world = emulator.world
        with world.lock:
            rows = world.rows
            body = {
                "now": fmt_now(world.now),
                "transactions": len(rows),
                "deleted": int((rows.deleted >= 0).sum()),
                "coming": int(rows.coming.sum()),
                "renumbered": list(world.renumbered) if world.renumbered else None,
                "faults": emulator.faults.to_json(),
                "traffic": emulator.traffic.to_json(),
            }
        return json_response(body)

    async def reset_traffic(request: Request) -> Response:
        emulator.traffic.reset()
        return json_response(emulator.traffic.to_json())

    return [
        Route(f"{prefix}/advance", advance, methods=["POST"]),
        Route(f"{prefix}/faults", faults, methods=["POST"]),
        Route(f"{prefix}/state", state, methods=["GET"]),
        Route(f"{prefix}/traffic/reset", reset_traffic, methods=["POST"]),
    ]

"""`pfo emulator serve` (the `pfo_pipeline.commands` entry point) or `python -m powens_emulator
serve`: the emulator in the foreground."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import datetime

import click

from powens_emulator.credentials import DEMO_CLIENT_ID
from powens_emulator.faults import FaultConfig, FaultConfigError

NOW_FORMAT = "%Y-%m-%d %H:%M:%S"
# The credentials the emulator accepts at `/auth/renew` (default: the demo pair, credentials.py). The
# secret comes only from the environment, so it is never on a command line (`ps` shows those).
CLIENT_ID_ENV = "POWENS_EMULATOR_CLIENT_ID"
CLIENT_SECRET_ENV = "POWENS_EMULATOR_CLIENT_SECRET"


def _parse_faults(ctx: click.Context, param: click.Parameter, value: str) -> FaultConfig:
    try:
        return FaultConfig.parse(value)
    except FaultConfigError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _parse_milliseconds(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> float | None:
    """A latency option, checked as the faults route checks it (finite, >= 0)."""
    if value is None:
        return None
    key = (param.name or "").replace("-", "_")
    try:
        return FaultConfig.parse(f"{key}={value}").to_json()[key]
    except FaultConfigError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _parse_now(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, NOW_FORMAT)
    except ValueError:
        raise click.BadParameter(
            f'{value!r} is not a naive Paris time "YYYY-MM-DD HH:MM:SS"', ctx=ctx, param=param
        ) from None


@click.group(name="emulator")
def emulator_cli() -> None:
    """The Powens API emulator (offline upstream for the demo and tests)."""


@emulator_cli.command()
@click.option("--port", default=8765, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=42, show_default=True)
@click.option(
    "--transactions",
    type=click.IntRange(min=0),
    default=6000,
    show_default=True,
    help="History size of user 1.",
)
@click.option(
    "--faults",
    default="",
    callback=_parse_faults,
    help='e.g. "rate_429=0.1,rate_503=0.05,connection_states=1:SCARequired"',
)
@click.option(
    "--latency-ms",
    default=None,
    callback=_parse_milliseconds,
    help="Delay every Powens request by this many milliseconds (real Powens: hundreds).",
)
@click.option(
    "--jitter-ms",
    default=None,
    callback=_parse_milliseconds,
    help="Plus up to this many milliseconds more per request, drawn from the faults' seed.",
)
@click.option(
    "--now",
    default=None,
    callback=_parse_now,
    help='Clock start, naive Paris time "YYYY-MM-DD HH:MM:SS".',
)
@click.option(
    "--client-id",
    envvar=CLIENT_ID_ENV,
    default=DEMO_CLIENT_ID,
    show_default=True,
    show_envvar=True,
    help=f"The client id /auth/renew accepts; its secret is ${CLIENT_SECRET_ENV} when set.",
)
def serve(
    port: int,
    seed: int,
    transactions: int,
    faults: FaultConfig,
    latency_ms: float | None,
    jitter_ms: float | None,
    now: datetime | None,
    client_id: str,
) -> None:
    """Serve the Powens API v2.0 on 127.0.0.1."""
    # The server is imported only to serve: `pfo --help` describes this command without it.
    from powens_emulator.runner import EmulatorConfig, default_now, serve_forever

    latency = {"latency_ms": latency_ms, "jitter_ms": jitter_ms}
    faults = replace(faults, **{k: v for k, v in latency.items() if v is not None})
    clock = now or default_now()
    secret = os.environ.get(CLIENT_SECRET_ENV)
    if secret == "":
        raise click.UsageError(f"{CLIENT_SECRET_ENV} is set but empty: unset it or give a secret")
    config = EmulatorConfig(
        seed=seed,
        transactions=transactions,
        now=clock,
        faults=faults,
        client_id=client_id,
        client_secret=secret or EmulatorConfig.client_secret,
    )
    click.echo(f"Powens emulator: http://127.0.0.1:{port}/2.0  (seed {seed}, clock {clock})")
    if faults.latency_ms or faults.jitter_ms:
        click.echo(f"Latency: {faults.latency_ms:g} ms + up to {faults.jitter_ms:g} ms of jitter.")
    # Credentials are named, never printed: even demo secrets should not be copied out of a log.
    where = (
        f"${CLIENT_SECRET_ENV}"
        if secret
        else "EmulatorConfig.client_secret (powens_emulator/runner.py)"
    )
    click.echo(f"client_id={config.client_id}; its secret is {where}.")
    click.echo(
        f"User tokens: POST http://127.0.0.1:{port}/2.0/auth/renew with client_id, client_secret "
        "and id_user (1 or 2). Faults: POST /2.0/__emulator/faults."
    )
    serve_forever(config, port)

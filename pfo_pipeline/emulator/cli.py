"""`pfo emulator serve`: the emulator in the foreground."""

from __future__ import annotations

from datetime import datetime

import click

from pfo_pipeline.emulator.app import FaultConfig
from pfo_pipeline.emulator.runner import EmulatorConfig, build_emulator, default_now, serve_forever


@click.group(name="emulator")
def emulator_cli() -> None:
    """The Powens API emulator (offline upstream for the demo and tests)."""


@emulator_cli.command()
@click.option("--port", default=8765, show_default=True)
@click.option("--seed", default=42, show_default=True)
@click.option("--transactions", default=6000, show_default=True, help="History size of user 1.")
@click.option(
    "--faults", default="", help='e.g. "rate_429=0.1,rate_503=0.05,connection_states=1:SCARequired"'
)
@click.option("--now", default=None, help='Clock start, naive Paris time "YYYY-MM-DD HH:MM:SS".')
def serve(port: int, seed: int, transactions: int, faults: str, now: str | None) -> None:
    """Serve the Powens API v2.0 on 127.0.0.1."""
    try:
        fault_config = FaultConfig.parse(faults)
    except (ValueError, TypeError) as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from None
    clock = datetime.strptime(now, "%Y-%m-%d %H:%M:%S") if now else default_now()
    config = EmulatorConfig(seed=seed, transactions=transactions, now=clock, faults=fault_config)
    preview = build_emulator(EmulatorConfig(seed=seed, transactions=10, now=clock))
    click.echo(f"Powens emulator: http://127.0.0.1:{port}/2.0  (seed {seed}, clock {clock})")
    click.echo(
        f"client_id={config.client_id} client_secret={config.client_secret} (emulator-only demo values)"
    )
    for user in (1, 2):
        click.echo(f"user {user} token: {preview.world.initial_token(user)}")
    serve_forever(config, port)

"""`pfo tenants check`: validate the tenants file before a deploy, the way the code location will."""

from __future__ import annotations

from pathlib import Path

import click

from pfo_pipeline import settings
from pfo_pipeline.tenancy.config import TenantConfigError, read_tenants_file


@click.group()
def tenants_cli() -> None:
    """The tenants file (PFO_TENANTS_FILE)."""


@tenants_cli.command("check")
@click.option(
    "--file",
    "path",
    type=click.Path(path_type=Path),
    default=None,
    help="Tenants file to check (default: PFO_TENANTS_FILE, else the sample).",
)
def check(path: Path | None) -> None:
    """List the tenants that load, every broken tenant, every secret not set here (nor in
    ./.env), and every variable ./.env sets to another value than the environment.

    Exits 1 when a tenant is broken (the code location would leave it out), 0 otherwise.
    """
    try:
        tenants_file = read_tenants_file(path)
    except TenantConfigError as exc:
        raise click.ClickException(str(exc)) from None
    for tenant_id in tenants_file.tenants:
        click.echo(f"ok       {tenant_id}")
    for warning in tenants_file.warnings():
        click.echo(f"warning  {warning}")
    loaded = settings.last_dotenv_load()
    for name in loaded.shadowed if loaded else ():
        click.echo(
            f"warning  {loaded.path}: {name} is also set in your environment, to another value: "
            "pfo commands use the environment's, but Dagster's CLI (dg, dagster) lets .env "
            "override the environment and would use this file's; remove it from .env"
        )
    for problem in tenants_file.problems:
        click.echo(f"error    {problem}", err=True)
    if tenants_file.problems:
        raise SystemExit(1)

"""`pfo`: one command line for the emulator, the demo, webhooks, the bank-connect flow, and the
ledger (`pfo sql`, `pfo ledger migrate|maintain`) and the tenants file (`pfo tenants check`)."""

from __future__ import annotations

import click

from pfo_pipeline.demo import demo
from pfo_pipeline.emulator.cli import emulator_cli
from pfo_pipeline.ledger.cli import ledger_cli, sql_command
from pfo_pipeline.tenancy.cli import tenants_cli
from pfo_pipeline.webhooks.cli import connect, webhooks_cli


@click.group()
def main() -> None:
    """Pocket Family Office open-banking pipeline."""


main.add_command(emulator_cli, name="emulator")
main.add_command(demo, name="demo")
main.add_command(webhooks_cli, name="webhooks")
main.add_command(connect, name="connect")
main.add_command(sql_command, name="sql")
main.add_command(ledger_cli, name="ledger")
main.add_command(tenants_cli, name="tenants")


if __name__ == "__main__":
    main()

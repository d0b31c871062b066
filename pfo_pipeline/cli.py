"""`pfo`: one command line for the emulator, the demo, webhooks, the bank-connect flow, and the
ledger (`pfo sql`, `pfo ledger migrate|maintain`) and the tenants file (`pfo tenants check`).

Every command reads its settings the same way (`pfo_pipeline.settings`): the environment, filled
in from the working directory's `.env` where it sets nothing (a variable set in the environment
always wins)."""

from __future__ import annotations

import click

from pfo_pipeline import settings
from pfo_pipeline.demo import demo
from pfo_pipeline.emulator.cli import emulator_cli
from pfo_pipeline.lake.cli import ledger_cli, sql_command
from pfo_pipeline.tenancy.cli import tenants_cli
from pfo_pipeline.webhooks.cli import connect, webhooks_cli


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Pocket Family Office open-banking pipeline.

    Settings come from the environment; a `.env` in the working directory fills in the
    variables the environment does not set (the environment always wins).
    """
    # Undone when the command ends: a command invoked in-process leaves the environment as it was.
    ctx.call_on_close(settings.load_dotenv_file().undo)


main.add_command(emulator_cli, name="emulator")
main.add_command(demo, name="demo")
main.add_command(webhooks_cli, name="webhooks")
main.add_command(connect, name="connect")
main.add_command(sql_command, name="sql")
main.add_command(ledger_cli, name="ledger")
main.add_command(tenants_cli, name="tenants")


if __name__ == "__main__":
    main()

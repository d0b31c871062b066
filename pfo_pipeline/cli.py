"""`pfo`: one command line for the emulator, the demo, webhooks and the bank-connect flow."""

from __future__ import annotations

import click

from pfo_pipeline.demo import demo
from pfo_pipeline.emulator.cli import emulator_cli
from pfo_pipeline.webhooks.cli import connect, webhooks_cli


@click.group()
def main() -> None:
    """Pocket Family Office open-banking pipeline."""


main.add_command(emulator_cli, name="emulator")
main.add_command(demo, name="demo")
main.add_command(webhooks_cli, name="webhooks")
main.add_command(connect, name="connect")


if __name__ == "__main__":
    main()

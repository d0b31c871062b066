"""`pfo demo`'s command line: only the options here, so that describing the command imports
nothing else; the demo itself (Dagster, the emulator, the lake) is `pfo_pipeline.demo`."""

from __future__ import annotations

import click


@click.command()
@click.option(
    "--port",
    default=8765,
    show_default=True,
    help="Emulator port (the demo points the sample tenants here); 0 picks a free one.",
)
@click.option(
    "--transactions",
    default=6000,
    show_default=True,
    help="Emulated history size of the first family.",
)
@click.option("--seed", default=42, show_default=True)
def demo(port: int, transactions: int, seed: int) -> None:
    """Run the pipeline on the emulator and print the ledger, the marts and the overview."""
    from pfo_pipeline.demo import run_demo

    run_demo(port, transactions, seed)

"""`pfo demo`'s command line: only the options here, so that describing the command imports
nothing else; the demo itself (Dagster, the emulator, the lake) is `pfo_pipeline.demo`."""

from __future__ import annotations

import click

# Where `pfo demo --local-s3` keeps its lake: the bucket's data and the catalog, both kept
# between runs (a second run finds the same lake).
LOCAL_S3_DIR = "data/local-s3"
LOCAL_S3_CATALOG = "data/pfo_catalog_s3.sqlite"


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
@click.option(
    "--local-s3",
    is_flag=True,
    help=f"Keep the lake's files in a local S3 (SeaweedFS, from the dev extra) for the demo's "
    f"duration: bucket data in {LOCAL_S3_DIR}/, catalog {LOCAL_S3_CATALOG}.",
)
def demo(port: int, transactions: int, seed: int, local_s3: bool) -> None:
    """Run the pipeline on the emulator and print the ledger, the marts and the overview."""
    from pfo_pipeline.demo import run_demo

    run_demo(port, transactions, seed, local_s3)

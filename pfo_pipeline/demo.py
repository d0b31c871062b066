"""`pfo demo`: the whole pipeline end to end on the emulator, offline.

Starts the Powens emulator on loopback in a process of its own (`emulator_process`), materialises
the ledger assets for every sample tenant, builds the dbt marts, writes today's financial overview,
stops the emulator, then prints what landed and where. It always runs the sample tenants (the
emulator's demo family, whose secrets name the demo variables `PFO_DEMO_POWENS_*`), pointed at the
emulator it starts (`PFO_POWENS_BASE_URL`): never a real tenants file, never real credentials.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import click
import dagster as dg

from pfo_pipeline import settings
from pfo_pipeline.demo_cli import LOCAL_S3_CATALOG, LOCAL_S3_DIR
from pfo_pipeline.emulator_process import EmulatorStartError, emulator_process, free_port
from pfo_pipeline.interrupt_watch import interrupt_watch
from pfo_pipeline.knowledge import periods
from pfo_pipeline.lake import LakeError, LakeLocation, connect

# What the demo runs, selected the way the definitions group and label their assets: the ledger
# syncs (group `openbanking`), the dbt marts (group `analytics`) and the knowledge documents the
# overview writes (the `markdown` kind; the retention sweep beside them has nothing to sweep yet).
LEDGER = dg.AssetSelection.groups("openbanking")
MARTS = dg.AssetSelection.groups("analytics", "insights")
OVERVIEW = dg.AssetSelection.groups("knowledge") & dg.AssetSelection.kind("markdown")
# `pfo demo --local-s3`: its own lake, the catalog in LOCAL_S3_CATALOG and the files in a local
# SeaweedFS whose data stays in LOCAL_S3_DIR (both in `demo_cli`, whose help names them).
LOCAL_S3_BUCKET = "pfo-demo"


def _instance() -> dg.DagsterInstance:
    """The persistent instance when DAGSTER_HOME is set (the UI then shows the demo's runs)."""
    return (
        dg.DagsterInstance.get()
        if os.environ.get("DAGSTER_HOME")
        else dg.DagsterInstance.ephemeral()
    )


def run_demo(port: int, transactions: int, seed: int, local_s3: bool = False) -> None:
    """Run the pipeline on the emulator and print the ledger, the marts and the overview."""
    with contextlib.ExitStack() as stack:
        if local_s3:
            stack.enter_context(_on_local_s3())
        _demo(port, transactions, seed)
    if local_s3:
        click.echo(
            f"The local S3 stopped with the demo; its data stays in {LOCAL_S3_DIR}/, and the next "
            "`pfo demo --local-s3` syncs into the same lake."
        )


@contextlib.contextmanager
def _on_local_s3() -> Iterator[None]:
    """The demo's lake on its own local S3: SeaweedFS on loopback with credentials made for this
    run (set for this process only, whatever the shell holds), stopped when the demo ends."""
    from pfo_pipeline.lake.location import CATALOG_ENV, DATA_PATH_ENV
    from pfo_pipeline.local_s3 import LocalS3Error, seaweedfs

    with contextlib.ExitStack() as stack:
        try:
            store = stack.enter_context(
                seaweedfs(bucket=LOCAL_S3_BUCKET, data_dir=Path(LOCAL_S3_DIR).resolve())
            )
        except LocalS3Error as exc:
            raise click.ClickException(str(exc)) from None
        os.environ.update(store.env())
        os.environ[CATALOG_ENV] = f"sqlite:{Path(LOCAL_S3_CATALOG).resolve()}"
        os.environ[DATA_PATH_ENV] = f"s3://{LOCAL_S3_BUCKET}/lake/"
        click.echo(
            f"Local S3 (SeaweedFS) on {store.endpoint_url}; the bucket's data in {LOCAL_S3_DIR}/"
        )
        yield


def _demo(port: int, transactions: int, seed: int) -> None:
    from pfo_pipeline.definitions import build_resources
    from pfo_pipeline.tenancy.config import load_tenants

    for name, value in settings.DEMO_ENV.items():
        os.environ.setdefault(name, value)
    port = port or free_port()
    # The demo's own emulator and tenants, whatever the shell points at.
    os.environ[settings.TENANTS_FILE_ENV] = str(settings.SAMPLE_TENANTS_FILE)
    os.environ[settings.BASE_URL_ENV] = f"http://127.0.0.1:{port}/2.0"
    ledger = LakeLocation.from_env()
    try:  # before anything runs: a new lake is created (and logged) only where none was
        connect(ledger).close()
    except LakeError as exc:
        raise click.ClickException(str(exc)) from None
    instance = _instance()
    today = periods.today().isoformat()
    emulator = emulator_process(
        port=port,
        seed=seed,
        transactions=transactions,
        client_id=os.environ["PFO_DEMO_POWENS_CLIENT_ID"],
        client_secret=os.environ["PFO_DEMO_POWENS_CLIENT_SECRET"],
    )
    try:
        # Ctrl-C or SIGTERM stops the demo after the run it lands in, if Dagster dropped it.
        with emulator as running, interrupt_watch() as interrupted:
            tenants = load_tenants()
            click.echo(f"Powens emulator on {running.base_url} (the sample tenants point here)")
            resources = build_resources()

            def run(selection: dg.AssetSelection, key: str | dg.MultiPartitionKey | None) -> None:
                succeeded = _run(instance, resources, selection, key)
                if interrupted():
                    raise click.Abort()
                if not succeeded:
                    raise click.ClickException("a run failed; see the Dagster event log above")

            for tenant_id in tenants:
                click.echo(f"Syncing {tenant_id} ...")
                run(LEDGER, tenant_id)
            click.echo("Building the dbt marts ...")
            run(MARTS, None)
            for tenant_id in tenants:
                click.echo(f"Writing the financial overview of {tenant_id} for {today} ...")
                run(OVERVIEW, dg.MultiPartitionKey({"tenant": tenant_id, "day": today}))
    except EmulatorStartError as exc:
        raise click.ClickException(f"the Powens emulator did not start: {exc}") from None
    _print_summary(ledger, tenants)


def _run(
    instance: dg.DagsterInstance,
    resources: dict[str, object],
    selection: dg.AssetSelection,
    partition_key: str | dg.MultiPartitionKey | None,
) -> bool:
    """Materialise `selection` in-process; whether the run succeeded."""
    from pfo_pipeline.definitions import materializable

    result = dg.materialize(
        materializable(),
        selection=selection,
        partition_key=partition_key,
        resources=resources,
        instance=instance,
        raise_on_error=False,
        # Dagster's step events are DEBUG chatter for a demo; INFO keeps what the assets report.
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
    )
    return result.success


def _print_summary(ledger: LakeLocation, tenants: dict) -> None:
    conn = connect(ledger, read_only=True)
    try:
        click.echo("\nWhat landed in the ledger:")
        for tenant_id in tenants:
            counts = {
                table: conn.execute(
                    f"SELECT count(*) FROM ledger.{table} WHERE tenant_id = ?", [tenant_id]
                ).fetchall()[0][0]
                for table in (
                    "bank_accounts",
                    "bank_transactions",
                    "account_balances",
                    "quarantine",
                )
            }
            click.echo(f"  {tenant_id}: " + ", ".join(f"{k}={v:,}" for k, v in counts.items()))
            rows = conn.execute(
                "SELECT a.account_alias, a.currency, count(*) FROM analytics.dim_accounts a "
                "JOIN ledger.bank_transactions t ON t.account_id = a.account_id "
                "WHERE a.tenant_id = ? GROUP BY ALL ORDER BY 1",
                [tenant_id],
            ).fetchall()
            click.echo(
                "    transactions per account: "
                + ", ".join(f"{alias} ({cur}) {n:,}" for alias, cur, n in rows)
            )
        markdown = conn.execute(
            "SELECT markdown FROM knowledge.financial_overview WHERE period = 'month' "
            "ORDER BY tenant_id, generated_at DESC LIMIT 1"
        ).fetchall()
    finally:
        conn.close()
    if markdown:
        click.echo("\nFinancial overview (month):\n")
        click.echo(markdown[0][0])
    click.echo(f"\nThe ledger (a DuckLake): {ledger.describe()}")
    click.echo(
        "Query it at any time, also while runs write (schemas ledger, analytics, knowledge, "
        "telemetry):\n"
        '  pfo sql "FROM analytics.fct_daily_cashflow ORDER BY day DESC LIMIT 5"'
    )
    click.echo(
        "Explore in Dagster: source scripts/_setup.sh; pfo emulator serve & dg dev"
        "   (then http://127.0.0.1:3000)"
    )

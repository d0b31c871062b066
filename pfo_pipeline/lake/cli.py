"""`pfo sql` (read-only queries, time travel) and `pfo ledger` (migrate an old file, maintain).

`pfo sql` attaches the lake read-only under the usual schema names, so analysts never block a
run and never see half a load: each query reads one committed snapshot.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import click
import duckdb

from pfo_pipeline.lake import as_of
from pfo_pipeline.lake.attach import connect, open_lake
from pfo_pipeline.lake.errors import LakeError
from pfo_pipeline.lake.location import LakeLocation
from pfo_pipeline.lake.maintenance import DEFAULT_TIME_TRAVEL_DAYS, maintain
from pfo_pipeline.lake.migrate_file import copy_duckdb_file
from pfo_pipeline.lake.read_only import ReadOnlyViolation, check_statements, lock_down

MAX_ROWS_SHOWN = 200


def _snapshot_of_load(load_id: str) -> int:
    with open_lake(read_only=True) as conn:
        rows = conn.execute(
            "SELECT snapshot_id, status FROM ledger.loads WHERE load_id = ?", [load_id]
        ).fetchall()
    if not rows:
        raise click.BadParameter(f"no load {load_id!r} in ledger.loads", param_hint="--as-of-load")
    snapshot, status = rows[0]
    if snapshot is None:
        raise click.BadParameter(
            f"load {load_id!r} ({status}) committed no snapshot", param_hint="--as-of-load"
        )
    return int(snapshot)


def _connect_as_of(text: str) -> duckdb.DuckDBPyConnection:
    """The lake as it was at `text` (Europe/Paris unless it has an offset), said on stderr."""
    try:
        moment = as_of.parse_as_of(text)
    except as_of.AsOfError as exc:
        raise click.BadParameter(str(exc), param_hint="--as-of") from None
    with open_lake(read_only=True) as conn:
        start = as_of.lake_start(conn)
    try:
        as_of.check_in_range(moment, start)
    except as_of.AsOfError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"as of {as_of.describe(moment)}", err=True)
    return connect(snapshot_time=as_of.snapshot_time_literal(moment))


def _print(relation: duckdb.DuckDBPyRelation | None, as_csv: bool) -> None:
    if relation is None:  # a statement without a result
        return
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")  # Unix lines, not csv's \r\n
        writer.writerow(relation.columns)
        writer.writerows(relation.fetchall())
        return
    relation.show(max_rows=MAX_ROWS_SHOWN, max_width=200)


@click.command(name="sql")
@click.argument("query", required=False)
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (a header line, then rows).")
@click.option("--as-of-load", help="Read the ledger exactly as this load (ledger.loads) left it.")
@click.option(
    "--as-of",
    "as_of_time",
    help='Read the ledger as it was then: "2026-11-27 08:00" is Europe/Paris time; an offset '
    'says its own zone ("2026-11-27 08:00+01:00", "2026-11-27T07:00Z").',
)
def sql_command(
    query: str | None, as_csv: bool, as_of_load: str | None, as_of_time: str | None
) -> None:
    """Query the ledger read-only: `pfo sql "SELECT ..."`, or `pfo sql` for a prompt.

    Schemas: ledger, analytics, staging, knowledge, telemetry. Runs may write meanwhile.
    """
    if as_of_load and as_of_time:
        raise click.UsageError("use --as-of-load or --as-of, not both")
    try:
        if as_of_load:
            conn = connect(snapshot_version=_snapshot_of_load(as_of_load))
        elif as_of_time:
            conn = _connect_as_of(as_of_time)
        else:
            conn = connect(read_only=True, shared=False)  # its own database, locked down below
        lock_down(conn, LakeLocation.from_env())
    except LakeError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        if query:
            try:
                _print(_read(conn, query), as_csv)
            except (duckdb.Error, ReadOnlyViolation) as exc:
                raise click.ClickException(str(exc)) from None
            return
        _prompt(conn, as_csv)
    finally:
        conn.close()


def _read(conn: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyRelation | None:
    """The query's result, once every statement in it is known to only read."""
    check_statements(conn, sql)
    return conn.sql(sql)


def _prompt(conn: duckdb.DuckDBPyConnection, as_csv: bool) -> None:
    """A small read-only prompt: statements end with `;`, `.quit` or end of input leaves."""
    click.echo(f"pfo sql on {LakeLocation.from_env().describe()} (read-only; .quit to leave)")
    buffer: list[str] = []
    while True:
        try:
            line = input("pfo> " if not buffer else "...> ")
        except EOFError:
            click.echo()
            return
        if not buffer and line.strip() in (".quit", ".exit", "\\q"):
            return
        buffer.append(line)
        if not line.rstrip().endswith(";"):
            continue
        statement, buffer = "\n".join(buffer), []
        try:
            _print(_read(conn, statement), as_csv)
        except (duckdb.Error, ReadOnlyViolation) as exc:
            click.echo(f"Error: {exc}", err=True)


@click.group(name="ledger")
def ledger_cli() -> None:
    """Look after the ledger (a DuckLake at PFO_LAKE_CATALOG / PFO_LAKE_DATA_PATH)."""


@ledger_cli.command(name="migrate")
@click.option(
    "--from",
    "source",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A ledger file written by the versions before the lake (PFO_DUCKDB_PATH, data/pfo.duckdb).",
)
def migrate_command(source: Path) -> None:
    """Copy a DuckDB-file ledger into the lake and check every table's rows; a second run
    copies nothing."""
    try:
        with open_lake() as conn:
            reports = copy_duckdb_file(conn, source)
    except LakeError as exc:
        raise click.ClickException(str(exc)) from None
    for report in reports:
        click.echo(
            f"{report.table}: {report.source_rows:,} rows in the file, {report.copied:,} copied, "
            f"{report.missing:,} missing after the copy"
        )
    if any(r.missing for r in reports):
        raise click.ClickException("some rows did not reach the lake; nothing else was changed")
    click.echo(f"Every row of {source} is in the lake ({LakeLocation.from_env().describe()}).")


@ledger_cli.command(name="maintain")
@click.option(
    "--time-travel-days",
    default=DEFAULT_TIME_TRAVEL_DAYS,
    show_default=True,
    type=click.IntRange(min=0),
    help="Keep snapshots (time travel) this far back.",
)
@click.option(
    "--delete-unknown-files",
    is_flag=True,
    help="Also delete files of the data path older than the catalog (an earlier lake's data); "
    "by default they are kept and counted.",
)
def maintain_command(time_travel_days: int, delete_unknown_files: bool) -> None:
    """Compact small files, expire old snapshots, delete unreferenced files."""
    try:
        with open_lake() as conn:
            report = maintain(
                conn, window_days=time_travel_days, delete_unknown_files=delete_unknown_files
            )
    except LakeError as exc:
        raise click.ClickException(str(exc)) from None
    for line in report.lines():
        click.echo(line)

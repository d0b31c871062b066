"""Row counts on the dbt marts' materialisations, counted on the lake itself.

dagster-dbt's `fetch_row_counts()` asks dbt's DuckDB adapter in this process, which opens the
profile's `:memory:` path read-only as a file (`dbt_project/:memory:`) and fails for every mart
("Cannot open database … in read-only mode"): with the lake attached by a DuckLake secret there is
no database file to open. So each table the build materialises is counted here, on a lake
connection, as soon as dbt reports it (views are not counted: that would run their query).
"""

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import dagster as dg
import duckdb

# The key Dagster shows as the asset's row count (dagster-dbt's own fetch writes it too).
ROW_COUNT = "dagster/row_count"
COUNTED_MATERIALIZATIONS = frozenset({"table", "incremental", "seed"})


def with_row_counts(
    events: Iterable[Any], conn: duckdb.DuckDBPyConnection, manifest: Mapping[str, Any]
) -> Iterator[Any]:
    """The dbt events, each materialised table's with `dagster/row_count` (its rows as dbt
    left them: counted in the lake's latest snapshot right after dbt reported it)."""
    nodes = manifest.get("nodes", {})
    for event in events:
        if isinstance(event, dg.Output | dg.AssetMaterialization):
            unique_id = event.metadata.get("unique_id")
            node = nodes.get(getattr(unique_id, "value", unique_id)) or {}
            if node.get("config", {}).get("materialized") in COUNTED_MATERIALIZATIONS:
                (count,) = conn.execute(f"SELECT count(*) FROM {node['relation_name']}").fetchone()
                event = event.with_metadata(
                    {**event.metadata, ROW_COUNT: dg.MetadataValue.int(int(count))}
                )
        yield event

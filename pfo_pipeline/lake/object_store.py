"""The lake's data on S3 or an S3-compatible store (`PFO_LAKE_DATA_PATH=s3://bucket/prefix/`).

Credentials come only from the standard AWS variables, read when a connection is made:
`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN` when set), `AWS_REGION`
(or `AWS_DEFAULT_REGION`; default us-east-1), and `AWS_ENDPOINT_URL` (or the S3-only
`AWS_ENDPOINT_URL_S3`, which wins, as in the AWS SDKs) for a compatible store. From the endpoint's
URL: TLS from its scheme (`http://127.0.0.1:8333` is plain HTTP), the host and port as DuckDB's
ENDPOINT, and path-style addressing (`bucket` in the path, what MinIO, SeaweedFS and most
compatible stores serve); AWS itself gets virtual-host addressing. `PFO_S3_URL_STYLE` (`path` or
`vhost`) overrides the addressing either way.

They reach DuckDB as a TEMPORARY secret of each lake database (`add_secret`), scoped to the
lake's bucket: nothing is written to disk (a persistent secret would land in `~/.duckdb`), to the
catalog or to Dagster (no resource config, tag or metadata holds them). No value is logged: the
settings' repr leaves the secret and the token out, and an error creating the secret is reported
without the statement. pyarrow reaches the same bucket with the same settings (`filesystem`:
retention rewriting files, maintenance deleting orphans).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import duckdb

from pfo_pipeline.lake.errors import LakeError
from pfo_pipeline.lake.location import S3_SCHEME, bucket_of, is_s3

if TYPE_CHECKING:
    from pyarrow import fs as pafs

SECRET_NAME = "pfo_lake_s3"
DEFAULT_REGION = "us-east-1"
URL_STYLE_ENV = "PFO_S3_URL_STYLE"
URL_STYLES = ("path", "vhost")
KEY_ENV, SECRET_ENV, TOKEN_ENV = "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"
REGION_ENVS = ("AWS_REGION", "AWS_DEFAULT_REGION")
ENDPOINT_ENVS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


@dataclass(frozen=True)
class S3Settings:
    """How to reach the lake's bucket. The secret and the token are left out of the repr."""

    key_id: str
    secret: str = field(repr=False)
    session_token: str = field(repr=False)
    region: str
    endpoint: str  # host[:port] of a compatible store; "" for AWS itself
    use_ssl: bool
    url_style: str

    @classmethod
    def from_env(cls, data_path: str) -> S3Settings:
        key_id, secret = os.environ.get(KEY_ENV, ""), os.environ.get(SECRET_ENV, "")
        if not key_id or not secret:
            missing = " and ".join(n for n, v in ((KEY_ENV, key_id), (SECRET_ENV, secret)) if not v)
            raise LakeError(
                f"the lake's data path {data_path} is on S3, but {missing} "
                f"{'is' if ' and ' not in missing else 'are'} not set: set {KEY_ENV}, "
                f"{SECRET_ENV} and AWS_REGION (and AWS_ENDPOINT_URL for an S3-compatible store)"
            )
        region = next((os.environ[n] for n in REGION_ENVS if os.environ.get(n)), DEFAULT_REGION)
        endpoint, use_ssl = _endpoint()
        url_style = os.environ.get(URL_STYLE_ENV, "").strip().lower() or (
            "path" if endpoint else "vhost"
        )
        if url_style not in URL_STYLES:
            raise LakeError(
                f"{URL_STYLE_ENV}: {url_style!r} is not an addressing style; use 'path' (the "
                "bucket in the URL's path) or 'vhost' (the bucket in the host name)"
            )
        return cls(
            key_id=key_id,
            secret=secret,
            session_token=os.environ.get(TOKEN_ENV, ""),
            region=region,
            endpoint=endpoint,
            use_ssl=use_ssl,
            url_style=url_style,
        )


def _endpoint() -> tuple[str, bool]:
    """(host[:port], TLS) of `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`; ("", True) for AWS."""
    name = next((n for n in ENDPOINT_ENVS if os.environ.get(n)), None)
    if name is None:
        return "", True
    url = os.environ[name].strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LakeError(
            f"{name}: {url!r} is not an endpoint URL; write it with its scheme, "
            "e.g. https://s3.example.com or http://127.0.0.1:8333"
        )
    if parts.path.strip("/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise LakeError(
            f"{name}: {parts.scheme}://{parts.hostname}… names more than a host and port; "
            "write only scheme://host[:port]"
        )
    return parts.netloc, parts.scheme == "https"


# How DuckDB uploads a lake file: in parts of 5 MB (the S3 minimum; its default makes 80 MB parts,
# so each file being written was held whole, up to 64 MB, in memory) with at most 8 parts in
# flight. A million-row full sync's peak memory on S3: 716 MB with DuckDB's defaults, 621 MB with
# these (on local disk: 526 MB); `python -m benchmarks.s3_sync`.
UPLOAD_SETTINGS = {"s3_uploader_max_filesize": "'50GB'", "s3_uploader_thread_limit": "8"}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def add_secret(conn: duckdb.DuckDBPyConnection, data_path: str) -> None:
    """The lake's S3 secret in this database (temporary: in memory only), scoped to its bucket.
    httpfs must already be loaded."""
    settings = S3Settings.from_env(data_path)
    options = [
        "TYPE s3",
        "PROVIDER config",
        f"KEY_ID {_literal(settings.key_id)}",
        f"SECRET {_literal(settings.secret)}",
        f"REGION {_literal(settings.region)}",
        f"USE_SSL {'true' if settings.use_ssl else 'false'}",
        f"URL_STYLE {_literal(settings.url_style)}",
        f"SCOPE {_literal(S3_SCHEME + bucket_of(data_path) + '/')}",
    ]
    if settings.session_token:
        options.append(f"SESSION_TOKEN {_literal(settings.session_token)}")
    if settings.endpoint:
        options.append(f"ENDPOINT {_literal(settings.endpoint)}")
    try:
        for name, value in UPLOAD_SETTINGS.items():
            conn.execute(f"SET {name} = {value}")
        conn.execute(f"CREATE OR REPLACE TEMPORARY SECRET {SECRET_NAME} ({', '.join(options)})")
    except duckdb.Error as exc:
        # DuckDB may quote the statement (the secret in it) in a parser error: only its kind.
        raise LakeError(
            f"cannot give DuckDB the S3 credentials for {data_path} ({type(exc).__name__}); "
            "check the AWS_* variables"
        ) from None


# What dbt's profile reads (dbt_project/profiles.yml) to make the same secret. The credentials go
# under dbt's `DBT_ENV_SECRET_` prefix, whose values dbt scrubs from its logs and artifacts.
DBT_SECRET_PREFIX = "DBT_ENV_SECRET_"
DBT_SETTINGS_PREFIX = "PFO_DBT_S3_"


def dbt_variables(data_path: str) -> dict[str, str]:
    """The environment dbt needs to reach the lake's bucket: nothing for a local data path."""
    if not is_s3(data_path):
        return {}
    settings = S3Settings.from_env(data_path)
    return {
        f"{DBT_SECRET_PREFIX}{KEY_ENV}": settings.key_id,
        f"{DBT_SECRET_PREFIX}{SECRET_ENV}": settings.secret,
        f"{DBT_SECRET_PREFIX}{TOKEN_ENV}": settings.session_token,
        f"{DBT_SETTINGS_PREFIX}REGION": settings.region,
        f"{DBT_SETTINGS_PREFIX}ENDPOINT": settings.endpoint or "s3.amazonaws.com",
        f"{DBT_SETTINGS_PREFIX}USE_SSL": "true" if settings.use_ssl else "false",
        f"{DBT_SETTINGS_PREFIX}URL_STYLE": settings.url_style,
        f"{DBT_SETTINGS_PREFIX}SCOPE": S3_SCHEME + bucket_of(data_path) + "/",
    }


def filesystem(data_path: str) -> pafs.FileSystem:
    """pyarrow's filesystem for the lake's files: S3 with the same settings as DuckDB's secret,
    or the local one. (The region is always given: pyarrow would otherwise ask the network.)"""
    from pyarrow import fs as pafs

    if not is_s3(data_path):
        return pafs.LocalFileSystem()
    settings = S3Settings.from_env(data_path)
    return pafs.S3FileSystem(
        access_key=settings.key_id,
        secret_key=settings.secret,
        session_token=settings.session_token or None,
        region=settings.region,
        scheme="https" if settings.use_ssl else "http",
        endpoint_override=settings.endpoint or None,
        force_virtual_addressing=settings.url_style == "vhost" and bool(settings.endpoint),
    )


def filesystem_path(path: str) -> str:
    """A lake file's path as pyarrow's filesystem names it (`s3://b/k` -> `b/k`)."""
    return path[len(S3_SCHEME) :] if is_s3(path) else path

"""The lake's S3 settings come from the standard AWS variables only, reach DuckDB and dbt whole,
and are never shown: no server needed (the lake on a real S3 API: tests/lake/test_lake_on_s3.py,
with the past-one-machine proofs)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pfo_pipeline import lake
from pfo_pipeline.lake.extensions import database_with
from pfo_pipeline.lake.object_store import S3Settings, add_secret

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("http://127.0.0.1:8333", ("127.0.0.1:8333", False, "path")),
        ("https://minio.example.com", ("minio.example.com", True, "path")),
        ("https://s3.example.com:9000/", ("s3.example.com:9000", True, "path")),
        (None, ("", True, "vhost")),  # AWS itself
    ],
)
def test_s3_settings_come_from_the_standard_aws_variables(
    monkeypatch: pytest.MonkeyPatch, endpoint: str | None, expected: tuple
) -> None:
    for name in ("AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_S3",
                 "AWS_ENDPOINT_URL", "PFO_S3_URL_STYLE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalr-very-secret")
    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    settings = S3Settings.from_env("s3://bucket/lake/")
    assert (settings.endpoint, settings.use_ssl, settings.url_style) == expected
    assert settings.region == "us-east-1" and settings.session_token == ""
    assert "wJalr" not in repr(settings)

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token-secret")
    monkeypatch.setenv("PFO_S3_URL_STYLE", "vhost" if endpoint else "path")
    overridden = S3Settings.from_env("s3://bucket/lake/")
    assert overridden.region == "eu-west-3"
    assert overridden.url_style == ("vhost" if endpoint else "path")
    assert overridden.session_token == "session-token-secret"
    assert "session-token-secret" not in repr(overridden) and "wJalr" not in repr(overridden)
    monkeypatch.setenv("AWS_REGION", "eu-central-1")  # wins over AWS_DEFAULT_REGION
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://10.1.2.3:9000")  # the S3-only one wins
    last = S3Settings.from_env("s3://bucket/lake/")
    assert (last.region, last.endpoint, last.use_ssl) == ("eu-central-1", "10.1.2.3:9000", False)


def test_missing_or_malformed_s3_settings_are_named_without_their_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL_S3", "PFO_S3_URL_STYLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalr-very-secret")
    with pytest.raises(lake.LakeError, match="AWS_ACCESS_KEY_ID is not set") as missing:
        S3Settings.from_env("s3://bucket/lake/")
    assert "s3://bucket/lake/" in str(missing.value) and "wJalr" not in str(missing.value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "127.0.0.1:8333")
    with pytest.raises(lake.LakeError, match=r"AWS_ENDPOINT_URL: '127\.0\.0\.1:8333'.*scheme"):
        S3Settings.from_env("s3://bucket/lake/")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://user:pw@127.0.0.1:8333/x")
    with pytest.raises(lake.LakeError, match="only scheme://host") as extra:
        S3Settings.from_env("s3://bucket/lake/")
    assert "pw" not in str(extra.value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:8333")
    monkeypatch.setenv("PFO_S3_URL_STYLE", "virtual")
    with pytest.raises(lake.LakeError, match="PFO_S3_URL_STYLE: 'virtual'"):
        S3Settings.from_env("s3://bucket/lake/")
    with pytest.raises(lake.LakeError, match="names no bucket"):
        lake.LakeLocation("sqlite:c.sqlite", "s3:///lake/").resolved()
    with pytest.raises(lake.LakeError, match="neither a local folder nor an S3 location"):
        lake.LakeLocation("sqlite:c.sqlite", "gs://bucket/lake/").resolved()
    assert lake.LakeLocation("sqlite:c", "s3://b/p").resolved().data_path == "s3://b/p/"


def test_a_secret_with_quotes_is_taken_whole_and_an_error_never_quotes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:8333")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "it's-a-secret')) ; DROP")
    conn = database_with("httpfs")
    try:
        add_secret(conn, "s3://b/lake/")  # quoted: the statement stays whole
        assert conn.execute("SELECT count(*) FROM duckdb_secrets()").fetchall() == [(1,)]
    finally:
        conn.close()
    broken = duckdb.connect()  # httpfs not loaded and not loadable: the error names no value
    try:
        broken.execute("SET autoinstall_known_extensions = false")
        broken.execute("SET autoload_known_extensions = false")
        with pytest.raises(lake.LakeError, match="cannot give DuckDB the S3 credentials") as exc:
            add_secret(broken, "s3://b/lake/")
        assert "it's-a-secret" not in str(exc.value)
        assert exc.value.__cause__ is None and exc.value.__suppress_context__
    finally:
        broken.close()


def test_dbt_gets_the_same_s3_settings_with_the_credentials_under_its_secret_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """dbt's profile makes its S3 secret from these: the same endpoint, TLS, addressing and
    bucket scope as the pipeline's own, the credentials under `DBT_ENV_SECRET_` (dbt scrubs
    those values from its logs); a local lake passes none."""
    from pfo_pipeline.defs.analytics.project import dbt_variables

    for name in ("AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "PFO_S3_URL_STYLE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalr-very-secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:8333")
    variables = dbt_variables(lake.LakeLocation("sqlite:c.sqlite", "s3://pfo-lake/data"))
    assert {k: v for k, v in variables.items() if "S3" in k or k.startswith("DBT_")} == {
        "DBT_ENV_SECRET_AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "DBT_ENV_SECRET_AWS_SECRET_ACCESS_KEY": "wJalr-very-secret",
        "DBT_ENV_SECRET_AWS_SESSION_TOKEN": "",
        "PFO_DBT_S3_REGION": "us-east-1",
        "PFO_DBT_S3_ENDPOINT": "127.0.0.1:8333",
        "PFO_DBT_S3_USE_SSL": "false",
        "PFO_DBT_S3_URL_STYLE": "path",
        "PFO_DBT_S3_SCOPE": "s3://pfo-lake/",
    }
    assert variables["PFO_LAKE_DATA_PATH"] == "s3://pfo-lake/data/"
    local = dbt_variables(lake.LakeLocation("sqlite:c.sqlite", "data/lake/"))
    assert not [k for k in local if "S3" in k or k.startswith("DBT_ENV_SECRET_")]
    profile = (ROOT / "dbt_project" / "profiles.yml").read_text()
    for name in variables:
        if "S3" in name or name.startswith("DBT_ENV_SECRET_"):
            assert f"env_var('{name}'" in profile, name

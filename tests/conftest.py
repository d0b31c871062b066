"""Shared fixtures: an emulator on loopback, a tenants file pointing at it, a ledger (a DuckLake
in a folder: SQLite catalog + Parquet files), and a helper that materialises real Dagster assets
against them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import duckdb
import hypothesis
import pytest
import yaml

from pfo_pipeline import lake
from pfo_pipeline.defs.resources import LAKE, PowensResource, lake_resource
from powens_emulator import EmulatorConfig, start_emulator

if TYPE_CHECKING:
    from pfo_pipeline.local_s3 import S3Store

# Property tests draw the same examples on every run and machine (a red CI is then always
# reproducible); new examples come from changing the strategies, and found bugs stay as @example.
hypothesis.settings.register_profile("pfo", derandomize=True, print_blob=True)
hypothesis.settings.load_profile("pfo")

CLIENT_ID, CLIENT_SECRET = "pfo-demo-client", "pfo-demo-secret"
FAMILY, SECOND = "tenant.family-office", "tenant.second-family"

# Columns filled from our own clock or our load ids: equal content, different run, different values.
OWN_CLOCK_COLUMNS = {
    "created_at",
    "updated_at",
    "first_seen_at",
    "load_id",
    "quarantined_at",
    "checked_at",
}


def pytest_configure(config: pytest.Config) -> None:
    """Build dbt's manifest once, before any worker imports the definitions (two workers
    parsing the project at once would write the same manifest file)."""
    if not hasattr(config, "workerinput"):
        from pfo_pipeline.defs.analytics.project import dbt_project, ensure_manifest

        ensure_manifest(dbt_project())


# The files that take longest, longest first: `--dist loadfile --no-loadscope-reorder` hands
# files to workers in collection order, so starting these first keeps one worker from finishing a
# long file alone.
LONGEST_FILES = (
    "e2e/test_ledger_sync.py",
    "e2e/test_ui_end_to_end.py",
    "e2e/test_readme_examples.py",
    "e2e/test_settings_story.py",
    "operations/test_concurrent_fetch.py",
    "lake/test_lake.py",
    "operations/test_ledger_churn.py",
    "knowledge/test_insights.py",
    "e2e/test_overview_pipeline.py",
    "defs/test_definitions.py",
    "webhooks/test_webhooks.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.path.as_posix()
        return next(
            (i for i, f in enumerate(LONGEST_FILES) if path.endswith(f)), len(LONGEST_FILES)
        )

    items.sort(key=rank)  # stable: the order within a file, and of the other files, is kept


@pytest.fixture(autouse=True, scope="session")
def _isolated_dagster_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Never write Dagster state into the checkout or the user's home during tests."""
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    yield
    if previous is None:
        os.environ.pop("DAGSTER_HOME", None)
    else:
        os.environ["DAGSTER_HOME"] = previous


@pytest.fixture(autouse=True, scope="session")
def _step_retries_without_waits() -> Iterator[None]:
    """Dagster waits between a step's attempts (1, 2, then 4 s for a sync): the tests prove the
    attempts and what each one did, not the pause, so runs in the test process retry at once.
    (The policies themselves are checked in tests/defs; the UI's runs keep the real waits.)"""
    patch = pytest.MonkeyPatch()
    patch.setattr(dg.RetryPolicy, "calculate_delay", lambda self, attempt_num: 0)
    yield
    patch.undo()


def tenant_document(
    tenant_id: str, connection_id: str, user_id: int, url: str, *, env_prefix: str = "PFO_TEST"
) -> dict:
    """One tenant of a tenants file, on the emulator at `url`; secrets name `<env_prefix>_…`."""
    return {
        "tenant_id": tenant_id,
        "app_id": "pocket-family-office",
        "blueprint": "pocket-family-office.app@1.0.0",
        "config_version": 1,
        "bindings": {
            "primaryOpenBanking": {
                "connection_id": connection_id,
                "integration_key": "openbanking.powens",
                "ownership_mode": "byok",
                "powens_user_id": user_id,
                "config": {
                    "environment": "sandbox",
                    "domain": "pfo-sandbox",
                    "base_url": url,
                    "polling_interval_ms": 300000,
                },
                "secrets": {
                    "client_id": f"{env_prefix}_POWENS_CLIENT_ID",
                    "client_secret": f"{env_prefix}_POWENS_CLIENT_SECRET",
                    "webhook_secret": f"{env_prefix}_POWENS_WEBHOOK_SECRET",
                },
            }
        },
    }


def write_tenants_file(path: Path, base_url: str, *, second_base_url: str | None = None) -> Path:
    tenant = tenant_document

    body = {
        "tenants": [
            tenant(FAMILY, "conn-powens-primary", 1, base_url),
            tenant(SECOND, "conn-powens-second", 2, second_base_url or base_url),
        ]
    }
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


@pytest.fixture
def powens_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PFO_TEST_POWENS_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("PFO_TEST_POWENS_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("PFO_TEST_POWENS_WEBHOOK_SECRET", "whsec-test-0123456789")


@contextmanager
def demo_credentials() -> Iterator[None]:
    """The emulator's credentials in the environment, for module-scoped set-ups (the
    function-scoped `powens_env` fixture cannot serve them)."""
    env = pytest.MonkeyPatch()
    env.setenv("PFO_TEST_POWENS_CLIENT_ID", CLIENT_ID)
    env.setenv("PFO_TEST_POWENS_CLIENT_SECRET", CLIENT_SECRET)
    try:
        yield
    finally:
        env.undo()


@contextmanager
def synced_family(tmp: Path, *, seed: int, transactions: int) -> Iterator[tuple]:
    """Module-scoped setup shared by heavier tests: an emulator, a tenants file pointing at it,
    and a ledger with the family tenant synced through the real Dagster assets."""
    ledger = tmp / "ledger"
    with (
        demo_credentials(),
        start_emulator(EmulatorConfig(seed=seed, transactions=transactions)) as emulator,
    ):
        tenants = write_tenants_file(tmp / "tenants.yaml", emulator.base_url)
        assert materialize_ledger(tenants, ledger, FAMILY).success
        yield emulator, tenants, ledger


@contextmanager
def using_tenants_file(path: Path) -> Iterator[None]:
    """`PFO_TENANTS_FILE` for the block: the one place the pipeline reads its tenants from."""
    env = pytest.MonkeyPatch()
    env.setenv("PFO_TENANTS_FILE", str(path))
    try:
        yield
    finally:
        env.undo()


def resources_for(ledger: Path, **powens_options: object) -> dict[str, object]:
    """The definitions' resources on a test's lake folder, with a patient-but-quick client (the
    tenants come from `PFO_TENANTS_FILE`: see `using_tenants_file`)."""
    options = {"backoff_initial_s": 0.01, "timeout_s": 2.0, "max_attempts": 8}
    options.update(powens_options)
    from pfo_pipeline.defs.resources import dbt_resource

    return {
        "powens": PowensResource(**options),
        LAKE: lake_resource(ledger),
        "dbt": dbt_resource(),
    }


# The ledger group's assets: what "Materialize all" on it runs for one tenant's partition.
LEDGER_ASSETS = (
    "powens_connection_health",
    "bank_accounts",
    "bank_transactions",
    "account_balances",
)


def materialize_ledger(
    tenants_file: Path,
    ledger: Path,
    tenant_id: str,
    *,
    assets: tuple[str, ...] = LEDGER_ASSETS,
    run_config: dict | None = None,
    raise_on_error: bool = True,
    instance: dg.DagsterInstance | None = None,
    **powens_options: object,
) -> dg.ExecuteInProcessResult:
    from pfo_pipeline.definitions import materializable

    with using_tenants_file(tenants_file):
        return dg.materialize(
            materializable(),
            selection=dg.AssetSelection.assets(*assets),
            partition_key=tenant_id,
            resources=resources_for(ledger, **powens_options),
            run_config=run_config,
            raise_on_error=raise_on_error,
            instance=instance,
        )


def run_log_text(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> str:
    """Every message the run logged (the Dagster event log, as the UI shows it)."""
    return "\n".join(entry.user_message for entry in instance.all_logs(result.run_id))


def open_ledger(
    ledger: Path, *, read_only: bool = False, relocated: bool = False
) -> duckdb.DuckDBPyConnection:
    """A connection to the lake a test's ledger folder holds (what the resource writes);
    `relocated` for a copy of such a folder."""
    return lake.connect(
        lake.LakeLocation.in_folder(ledger), read_only=read_only, relocated=relocated
    )


def table_digest(ledger: Path, table: str, *, business_only: bool = False) -> str:
    """md5 over every row (ordered by its key) of a ledger table."""
    conn = open_ledger(ledger, read_only=True)
    try:
        columns = [
            name
            for (name,) in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_catalog = 'lake' "
                "AND table_schema = 'ledger' AND table_name = ? ORDER BY ordinal_position",
                [table],
            ).fetchall()
        ]
        if business_only:
            columns = [c for c in columns if c not in OWN_CLOCK_COLUMNS]
        row = " || '|' || ".join(f"coalesce(CAST({c} AS VARCHAR), '~')" for c in columns)
        return conn.execute(
            f"SELECT md5(coalesce(string_agg({row}, chr(10) ORDER BY {row}), '')) "
            f"FROM ledger.{table}"
        ).fetchall()[0][0]
    finally:
        conn.close()


LEDGER_TABLES = (
    "bank_accounts",
    "account_aliases",
    "bank_transactions",
    "account_balances",
    "quarantine",
    "sync_cursors",
    "category_overrides",
)


def ledger_digests(ledger: Path, *, business_only: bool = False) -> dict[str, str]:
    return {t: table_digest(ledger, t, business_only=business_only) for t in LEDGER_TABLES}


def query(ledger: Path, sql: str, params: list | None = None) -> list[tuple]:
    conn = open_ledger(ledger, read_only=True)
    try:
        return conn.execute(sql, params or []).fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="session")
def s3_store() -> Iterator[S3Store]:
    """A SeaweedFS S3 on loopback for the worker's session (started on first use, ~3 s)."""
    from pfo_pipeline.local_s3 import seaweedfs

    with seaweedfs() as store:
        yield store


@pytest.fixture
def s3_env(s3_store: S3Store, monkeypatch: pytest.MonkeyPatch) -> S3Store:
    """Only the four standard AWS variables of the test store in the environment."""
    for name in S3_SETTINGS_NOT_SET:
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_store.env().items():
        monkeypatch.setenv(name, value)
    return s3_store


S3_SETTINGS_NOT_SET = (
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL_S3",
    "PFO_S3_URL_STYLE",
)

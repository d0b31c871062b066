"""One settings story, proven by real processes (issue 27, item 1 and what rides on it).

Real credentials are exported; the working directory holds the demo `.env` that
`scripts/_setup.sh` writes (its writer, `pfo_pipeline.demo_dotenv`, makes it here). The emulator
accepts only the real credentials, so a run that succeeds used them. Dagster's CLI
(`dagster asset materialize`, `dg launch`) and every `pfo` command are run as the user runs them,
in a dg project directory (a `pyproject.toml` with the checkout's `[tool.dg]`), and their output
is read: no "code location name … does not match" line, no WARNING from a healthy run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml

from pfo_pipeline import settings
from pfo_pipeline.demo_dotenv import write_demo_dotenv
from pfo_pipeline.lake import LakeLocation
from pfo_pipeline.webhooks.signature import sign, signature_date
from powens_emulator import EmulatorConfig, start_emulator
from tests.conftest import FAMILY, SECOND, tenant_document
from tests.e2e.test_ui_end_to_end import dg_project, free_port

BIN = Path(sys.executable).parent
# Real dagster, dg and pfo processes, about a minute and a half: a CI step of their own.
pytestmark = pytest.mark.cli_proofs
REAL = {
    "PFO_POWENS_CLIENT_ID": "real-client-id",
    "PFO_POWENS_CLIENT_SECRET": "real-client-secret",
    "PFO_POWENS_WEBHOOK_SECRET": "real-webhook-secret",
}
# A third tenant whose webhook secret is named but set nowhere: `pfo webhooks serve` names it.
UNSET_WEBHOOK = "PFO_THIRD_POWENS_WEBHOOK_SECRET"
MISMATCH = "does not match"


@dataclass(frozen=True)
class Place:
    project: Path  # the working directory: a dg project with the demo `.env`
    env: dict[str, str]  # the shell: real credentials exported, nothing else of ours
    tenants: Path
    lake: LakeLocation
    emulator: object
    materialize: subprocess.CompletedProcess
    launch: subprocess.CompletedProcess


def tenants_document(tmp: Path) -> dict:
    """The family names the real variables; the second family the demo ones (set only in the
    `.env`), and finds the emulator through `${PFO_POWENS_BASE_URL:-…}`; a third names a
    webhook secret set nowhere."""
    base_url = "${PFO_POWENS_BASE_URL:-http://127.0.0.1:9/2.0}"
    family = tenant_document(FAMILY, "conn-powens-primary", 1, base_url, env_prefix="PFO")
    second = tenant_document(SECOND, "conn-powens-second", 2, base_url, env_prefix="PFO_DEMO")
    third = tenant_document("tenant.third", "conn-powens-third", 2, base_url, env_prefix="PFO_DEMO")
    third["bindings"]["primaryOpenBanking"]["secrets"]["webhook_secret"] = UNSET_WEBHOOK
    return {"tenants": [family, second, third]}


def run(place_env: dict[str, str], cwd: Path, *args: str, timeout: int = 300):
    return subprocess.run(
        list(args), cwd=cwd, env=place_env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Place]:
    tmp = tmp_path_factory.mktemp("settings")
    project = dg_project(tmp)
    write_demo_dotenv(project / ".env")  # what scripts/_setup.sh writes
    home = tmp / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    lake = LakeLocation.in_folder(tmp / "ledger")
    tenants = tmp / "tenants.yaml"
    tenants.write_text(yaml.safe_dump(tenants_document(tmp), sort_keys=False))
    config = EmulatorConfig(
        seed=5, transactions=300, client_id=REAL["PFO_POWENS_CLIENT_ID"],
        client_secret=REAL["PFO_POWENS_CLIENT_SECRET"],
    )  # fmt: skip
    with start_emulator(config) as emulator:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PFO_")}
        env.update(
            REAL,
            DAGSTER_HOME=str(home),
            VIRTUAL_ENV=str(Path(sys.executable).parents[1]),
            PFO_TENANTS_FILE=str(tenants),
            PFO_POWENS_BASE_URL=emulator.base_url,
            PFO_WEBHOOK_INBOX=str(tmp / "inbox.sqlite3"),
            **lake.env(),
        )
        materialize = run(
            env, project, str(BIN / "dagster"), "asset", "materialize",
            "-m", "pfo_pipeline.definitions", "--partition", FAMILY,
            "--select", "powens_connection_health,bank_accounts,account_balances",
        )  # fmt: skip
        # What the README documents for scripts and cron.
        launch = run(
            env, project, str(BIN / "dg"), "launch", "--assets", "bank_transactions",
            "--partition", FAMILY,
        )  # fmt: skip
        yield Place(project, env, tenants, lake, emulator, materialize, launch)


def test_dagster_asset_materialize_uses_the_exported_credentials(place: Place) -> None:
    done = place.materialize
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "RUN_SUCCESS" in output
    # The emulator accepts only the real credentials: the exported ones reached the run.
    assert MISMATCH not in output
    assert " - WARNING - " not in output, [
        line for line in output.splitlines() if "WARNING" in line
    ]
    assert "real-client-secret" not in output


def test_dg_launch_materialises_from_the_command_line(place: Place) -> None:
    done = place.launch
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "RUN_SUCCESS" in output and MISMATCH not in output
    assert " - WARNING - " not in output, [
        line for line in output.splitlines() if "WARNING" in line
    ]


def test_every_way_of_loading_the_location_prints_no_name_mismatch(place: Place) -> None:
    """`-m` names the location after the module, workspace.yaml and dg name it `pfo_pipeline`:
    the tree takes whichever name its loader gives, so none of them warns."""
    root = Path(__file__).resolve().parents[2]
    for cwd, args in (
        (place.project, ["dagster", "definitions", "validate", "-m", "pfo_pipeline.definitions"]),
        (root, ["dagster", "definitions", "validate", "-w", "workspace.yaml"]),
        (place.project, ["dg", "check", "defs"]),
    ):
        done = run(place.env, cwd, str(BIN / args[0]), *args[1:])
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-3000:]
        assert MISMATCH not in output, args


def _pfo(place: Place, cwd: Path, *args: str, env: dict[str, str] | None = None):
    return run(env or place.env, cwd, str(BIN / "pfo"), *args)


@pytest.fixture(scope="module")
def pfo_dir(place: Place, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A working directory whose `.env` holds the demo variables, an older set-up's demo values
    under the REAL names, and the non-secret settings (lake, tenants file, emulator address);
    the shell exports only the real credentials."""
    cwd = tmp_path_factory.mktemp("pfo_cwd")
    moved = {k: v for k, v in place.env.items() if k.startswith("PFO_") and k not in REAL}
    lines = [
        "PFO_POWENS_CLIENT_ID=pfo-demo-client",
        "PFO_POWENS_CLIENT_SECRET=pfo-demo-secret",
        "PFO_POWENS_WEBHOOK_SECRET=pfo-demo-webhook-secret",
        *(f"{k}={v}" for k, v in settings.DEMO_ENV.items()),
        *(f"{k}={v}" for k, v in moved.items()),
    ]
    (cwd / ".env").write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in place.env.items() if k not in moved}
    return cwd, env


def test_pfo_tenants_check_reads_the_env_file_and_flags_what_the_shell_overrides(
    place: Place, pfo_dir: tuple[Path, dict]
) -> None:
    cwd, env = pfo_dir
    done = _pfo(place, cwd, "tenants", "check", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    for tenant in (FAMILY, SECOND, "tenant.third"):
        assert f"ok       {tenant}" in done.stdout
    not_set = [line for line in done.stdout.splitlines() if "is not set" in line]
    assert len(not_set) == 1 and UNSET_WEBHOOK in not_set[0], not_set  # the demo ones are in .env
    shadowed = [line for line in done.stdout.splitlines() if "also set in your environment" in line]
    assert sorted(line.split(": ")[1].split()[0] for line in shadowed) == sorted(REAL)
    for value in (*REAL.values(), "pfo-demo-secret", "pfo-demo-client"):
        assert value not in done.stdout + done.stderr  # names only, never values


def test_pfo_connect_uses_the_exported_credentials_and_says_it_is_the_emulator(
    place: Place, pfo_dir: tuple[Path, dict], tmp_path: Path
) -> None:
    cwd, env = pfo_dir
    done = _pfo(
        place, cwd, "connect", "--tenant", FAMILY, "--inbox", str(tmp_path / "i.sqlite3"), env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    query = parse_qs(urlsplit(done.stdout.strip()).query)
    assert query["client_id"] == [REAL["PFO_POWENS_CLIENT_ID"]]  # the emulator took the real ones
    assert f"targets the Powens emulator at {place.emulator.base_url}" in done.stderr


def test_pfo_webhooks_serve_names_connections_without_secret_and_verifies_with_the_real_one(
    place: Place, pfo_dir: tuple[Path, dict], tmp_path: Path
) -> None:
    cwd, env = pfo_dir
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [str(BIN / "pfo"), "webhooks", "serve", "--port", str(port), "--inbox",
         str(tmp_path / "inbox.sqlite3")],
        cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "pfo webhooks serve did not start"
                time.sleep(0.2)
        path = "/webhooks/powens/conn-powens-primary/CONNECTION_SYNCED"
        body = b'{"user": {"id": 1}, "connection": {"id": 11}}'

        def post(secret: str) -> int:
            date = signature_date()
            headers = {
                "BI-Signature-Date": date,
                "BI-Signature": sign(secret, "POST", path, date, body),
                "Content-Type": "application/json",
            }
            url = f"http://127.0.0.1:{port}{path}"
            return httpx.post(url, content=body, headers=headers, timeout=10).status_code

        assert post(REAL["PFO_POWENS_WEBHOOK_SECRET"]) == 200
        assert post("pfo-demo-webhook-secret") == 401  # the .env's stale value lost
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
        log.close()
    started = (tmp_path / "serve.log").read_text()
    [missing] = [line for line in started.splitlines() if "has no webhook secret" in line]
    assert "conn-powens-third (tenant tenant.third)" in missing and UNSET_WEBHOOK in missing
    assert "real-webhook-secret" not in started


def test_pfo_sql_and_maintain_read_the_lake_named_in_the_env_file(
    place: Place, pfo_dir: tuple[Path, dict]
) -> None:
    cwd, env = pfo_dir
    done = _pfo(
        place, cwd, "sql", "--csv", "SELECT count(*) AS n FROM ledger.bank_accounts", env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("n\n") and int(done.stdout.split("\n")[1]) > 0
    assert "\r" not in done.stdout  # item 9: Unix line ends
    maintained = _pfo(place, cwd, "ledger", "maintain", env=env)
    assert maintained.returncode == 0, maintained.stderr
    for said in ("inlined rows from the catalog", "small files into", "snapshots", "files"):
        assert said in maintained.stdout


def test_an_unreachable_powens_fails_the_run_at_once_naming_host_and_port(place: Place) -> None:
    """Connection refused: the sync fails on its first attempt (Dagster does not retry a
    permanent error), the error's first line naming the address. (The time it takes is measured
    by `python -m benchmarks.unreachable_powens`.)"""
    port = free_port()  # nothing listens there
    env = {**place.env, "PFO_POWENS_BASE_URL": f"http://127.0.0.1:{port}/2.0"}
    done = run(
        env, place.project, str(BIN / "dagster"), "asset", "materialize",
        "-m", "pfo_pipeline.definitions", "--select", "bank_accounts", "--partition", FAMILY,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert output.count('STEP_START - Started execution of step "bank_accounts"') == 1, output
    assert "STEP_UP_FOR_RETRY" not in output and "max_retries" not in output
    lines = output.splitlines()
    failure = next(i for i, line in enumerate(lines) if "STEP_FAILURE" in line)
    first = next(line for line in lines[failure + 1 :] if line.strip())
    assert f"cannot reach 127.0.0.1:{port} (connection refused)" in first, first
    assert "not retried" in first and REAL["PFO_POWENS_CLIENT_SECRET"] not in output

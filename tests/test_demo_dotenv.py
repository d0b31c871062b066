"""The `.env` that scripts/_setup.sh writes (`pfo_pipeline.demo_dotenv`), and the way every `pfo`
command reads a `.env`: it fills in what the environment does not set, and never overrides it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from pfo_pipeline import settings
from pfo_pipeline.demo_dotenv import main, write_demo_dotenv


def names(path: Path) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in path.read_text().splitlines() if "=" in line]
    return {k: v for k, v in pairs if not k.startswith("#")}


def test_a_fresh_env_file_holds_only_the_demo_variables(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    assert write_demo_dotenv(path) == []
    assert names(path) == settings.DEMO_ENV
    assert write_demo_dotenv(path) == [] and names(path) == settings.DEMO_ENV  # idempotent


def test_an_older_env_file_is_moved_to_the_demo_names_and_keeps_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / ".env"
    path.write_text(
        "# Written by scripts/_setup.sh\n"
        "PFO_POWENS_CLIENT_ID=pfo-demo-client\n"
        "PFO_POWENS_CLIENT_SECRET=pfo-demo-secret\n"
        "PFO_POWENS_WEBHOOK_SECRET=pfo-demo-webhook-secret\n"
        "PFO_LAKE_CATALOG=sqlite:/somewhere/catalog.sqlite\n"
        "PFO_POWENS_API_KEY_FAMILY=a-value-the-user-wrote\n"
    )
    assert main([str(path)]) == 0
    assert "moved the emulator's demo credentials" in capsys.readouterr().out
    assert names(path) == {
        "PFO_LAKE_CATALOG": "sqlite:/somewhere/catalog.sqlite",
        "PFO_POWENS_API_KEY_FAMILY": "a-value-the-user-wrote",  # not a demo value: kept
        **settings.DEMO_ENV,
    }
    assert path.read_text().startswith("# Written by scripts/_setup.sh\n")


def test_a_real_value_under_a_real_name_is_never_touched(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("PFO_POWENS_CLIENT_ID=my-real-client\n")
    write_demo_dotenv(path)
    assert names(path)["PFO_POWENS_CLIENT_ID"] == "my-real-client"


def test_pfo_fills_in_from_dotenv_never_over_the_environment_and_restores_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pfo_pipeline.cli import main as pfo

    (tmp_path / ".env").write_text(
        "PFO_ONLY_IN_DOTENV=from-file\nPFO_IN_BOTH=from-file\nPFO_SAME=same\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PFO_IN_BOTH", "from-environment")
    monkeypatch.setenv("PFO_SAME", "same")
    monkeypatch.delenv("PFO_ONLY_IN_DOTENV", raising=False)
    seen: dict[str, object] = {}

    @pfo.command("probe-settings")
    def probe() -> None:
        loaded = settings.last_dotenv_load()
        seen.update(
            only=os.environ.get("PFO_ONLY_IN_DOTENV"),
            both=os.environ.get("PFO_IN_BOTH"),
            shadowed=loaded.shadowed if loaded else None,
        )

    try:
        assert CliRunner().invoke(pfo, ["probe-settings"]).exit_code == 0
    finally:
        pfo.commands.pop("probe-settings")
    assert seen == {"only": "from-file", "both": "from-environment", "shadowed": ("PFO_IN_BOTH",)}
    assert "PFO_ONLY_IN_DOTENV" not in os.environ  # the command's end undid what it filled in
    assert settings.last_dotenv_load() is None

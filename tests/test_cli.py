"""`pfo`'s plugin commands: `pfo emulator` comes from the `pfo_pipeline.commands` entry point (the
emulator is a package beside the product), is listed by `pfo --help`, and works as the installed
`pfo` program runs it; a built-in name cannot be taken, and a plugin that fails to load says so
without breaking the other commands."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from click.testing import CliRunner
from click.utils import make_default_short_help

from pfo_pipeline import cli
from pfo_pipeline.cli import COMMAND_ENTRY_POINTS, main

BIN = Path(sys.executable).parent


def test_pfo_help_lists_the_emulator_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    assert "emulator  The Powens API emulator" in result.output
    for builtin in ("demo", "sql", "ledger", "tenants", "webhooks", "connect"):
        assert f"  {builtin} " in result.output


@pytest.mark.parametrize("name", sorted(cli.BUILTIN_COMMANDS))
def test_each_built_in_help_line_is_the_commands_own(name: str) -> None:
    """`pfo --help` shows built-ins from `BUILTIN_COMMANDS` without importing them: each line
    must be what the command itself says, at any width."""
    command = cli.load_builtin(name)
    for width in (20, 45, 74, 200):
        assert make_default_short_help(cli.BUILTIN_COMMANDS[name][1], width) == (
            command.get_short_help_str(width)
        )


def test_pfo_help_and_pfo_sql_import_no_other_command() -> None:
    """What a user waits for: `pfo --help` imports no command module and `pfo sql` neither
    Dagster, the demo, the webhooks nor the emulator's server."""
    probe = textwrap.dedent(
        """
        import sys
        from click.testing import CliRunner
        from pfo_pipeline.cli import main
        CliRunner().invoke(main, sys.argv[1:])
        heavy = ("dagster", "pfo_pipeline.demo", "pfo_pipeline.webhooks.cli", "powens_emulator.runner",
                 "pfo_pipeline.lake.cli", "pfo_pipeline.tenancy.cli", "uvicorn", "pandas")
        print(sorted(m for m in heavy if m in sys.modules))
        """
    )

    def imported(*args: str) -> str:
        run = subprocess.run(
            [sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True
        )
        return run.stdout.strip().splitlines()[-1]

    assert imported("--help") == "[]"
    assert imported("sql", "--help") == "['pfo_pipeline.lake.cli']"


def test_the_emulator_command_is_the_entry_points_not_a_built_in() -> None:
    import powens_emulator.cli

    assert "emulator" not in main.commands  # nothing in pfo_pipeline adds it
    with main.make_context("pfo", ["emulator"]) as ctx:
        assert main.get_command(ctx, "emulator") is powens_emulator.cli.emulator_cli


def test_pfo_emulator_serve_help_runs_through_the_installed_entry_point() -> None:
    """The installed `pfo` program, as a user runs it: the entry point is in the metadata."""
    result = subprocess.run(
        [str(BIN / "pfo"), "emulator", "serve", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "Usage: pfo emulator serve" in result.stdout and "--transactions" in result.stdout


def test_python_m_powens_emulator_serve_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "powens_emulator", "serve", "--help"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "Usage: python -m powens_emulator serve" in result.stdout


@pytest.fixture
def extra_entry_points(monkeypatch: pytest.MonkeyPatch):
    """Make `pfo` see these entry points besides the installed ones."""

    def install(**commands: str) -> None:
        installed = list(cli.entry_points(group=COMMAND_ENTRY_POINTS))
        extra = [EntryPoint(name, value, COMMAND_ENTRY_POINTS) for name, value in commands.items()]
        monkeypatch.setattr(cli, "entry_points", lambda group: [*installed, *extra])

    return install


def test_a_plugin_cannot_take_a_built_in_name(extra_entry_points) -> None:
    extra_entry_points(sql="powens_emulator.cli:emulator_cli")
    with main.make_context("pfo", ["sql"]) as ctx:
        assert main.get_command(ctx, "sql") is cli.load_builtin("sql")
        assert main.list_commands(ctx).count("sql") == 1


@pytest.mark.parametrize(
    "value, problem",
    [
        ("no_such_package.cli:command", "ModuleNotFoundError"),
        ("powens_emulator.runner:EmulatorConfig", "not a click command"),
    ],
)
def test_a_plugin_that_fails_to_load_says_so_and_breaks_nothing_else(
    extra_entry_points, value: str, problem: str
) -> None:
    extra_entry_points(broken=value)
    listing = CliRunner().invoke(main, ["--help"])
    assert listing.exit_code == 0, listing.output
    assert "broken" in listing.output and "emulator" in listing.output
    result = CliRunner().invoke(main, ["broken", "serve", "--port", "1"])
    assert result.exit_code == 1, result.output
    assert f"`pfo broken`: {value}" in result.output and problem in result.output
    assert "Traceback" not in result.output

"""`pfo`: one command line for the demo, webhooks, the bank-connect flow, the ledger (`pfo sql`,
`pfo ledger migrate|maintain`) and the tenants file (`pfo tenants check`), plus the commands other
installed packages register under the `pfo_pipeline.commands` entry points (`pfo emulator`, from
`powens_emulator`, a package beside the product that `pfo_pipeline` never imports).

Every command reads its settings the same way (`pfo_pipeline.settings`): the environment, filled
in from the working directory's `.env` where it sets nothing (a variable set in the environment
always wins)."""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import EntryPoint, entry_points

import click
from click.utils import make_default_short_help

from pfo_pipeline import settings

# Where other packages register `pfo` commands: `name = "package.module:click_command"`.
COMMAND_ENTRY_POINTS = "pfo_pipeline.commands"

# The built-in commands: where each lives, and the line `pfo --help` shows for it (a test holds
# each line to the command's own). A command's module is imported only when it runs or shows its
# own help: `pfo sql` never imports Dagster, and `pfo --help` imports no command at all.
BUILTIN_COMMANDS: dict[str, tuple[str, str]] = {
    "connect": (
        "pfo_pipeline.webhooks.cli:connect",
        "Print the Powens webview URL that links a bank to TENANT.",
    ),
    "demo": (
        "pfo_pipeline.demo_cli:demo",
        "Run the pipeline on the emulator and print the ledger, the marts and the overview.",
    ),
    "ledger": (
        "pfo_pipeline.lake.cli:ledger_cli",
        "Look after the ledger (a DuckLake at PFO_LAKE_CATALOG / PFO_LAKE_DATA_PATH).",
    ),
    "sql": (
        "pfo_pipeline.lake.cli:sql_command",
        'Query the ledger read-only: `pfo sql "SELECT ..."`, or `pfo sql` for a prompt.',
    ),
    "tenants": ("pfo_pipeline.tenancy.cli:tenants_cli", "The tenants file (PFO_TENANTS_FILE)."),
    "webhooks": ("pfo_pipeline.webhooks.cli:webhooks_cli", "The Powens webhook receiver."),
}


def load_builtin(name: str) -> click.Command:
    module, _, attribute = BUILTIN_COMMANDS[name][0].partition(":")
    return getattr(import_module(module), attribute)


class PluginCommandGroup(click.Group):
    """The built-in commands, imported when used, and the commands registered under
    `COMMAND_ENTRY_POINTS`, each imported only when it is asked for (invoked, or described by
    `--help`). A built-in command keeps its name; a plugin that fails to load is listed and says
    why when invoked, so one broken package does not take the other commands with it."""

    def _plugins(self) -> dict[str, EntryPoint]:
        return {
            entry.name: entry
            for entry in entry_points(group=COMMAND_ENTRY_POINTS)
            if entry.name not in BUILTIN_COMMANDS and entry.name not in self.commands
        }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*BUILTIN_COMMANDS, *self.commands, *self._plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name in BUILTIN_COMMANDS:
            self.add_command(load_builtin(cmd_name), cmd_name)
            return self.commands[cmd_name]
        entry = self._plugins().get(cmd_name)
        return None if entry is None else _load_plugin(entry)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """`pfo --help`: built-ins by their line in `BUILTIN_COMMANDS` (nothing imported), plugins
        by their own help."""
        rows = []
        for name in self.list_commands(ctx):
            limit = formatter.width - 6 - len(name)
            if name in BUILTIN_COMMANDS and name not in self.commands:
                rows.append((name, make_default_short_help(BUILTIN_COMMANDS[name][1], limit)))
            elif (command := self.get_command(ctx, name)) is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _load_plugin(entry: EntryPoint) -> click.Command:
    try:
        command = entry.load()
    except Exception as exc:  # the plugin's own fault, reported as its command's error
        problem = f"{entry.value} could not be loaded ({type(exc).__name__}: {exc})"
    else:
        if isinstance(command, click.Command):
            return command
        problem = f"{entry.value} is a {type(command).__name__}, not a click command"

    def unavailable() -> None:
        raise click.ClickException(
            f"`pfo {entry.name}`: {problem}; reinstall the project (scripts/_setup.sh)"
        )

    return click.Command(
        entry.name,
        callback=unavailable,
        help=f"(unavailable: {problem})",
        # Whatever follows the name, the answer is the plugin's problem, not a usage error.
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


@click.group(cls=PluginCommandGroup)
@click.pass_context
def main(ctx: click.Context) -> None:
    """Pocket Family Office open-banking pipeline.

    Settings come from the environment; a `.env` in the working directory fills in the
    variables the environment does not set (the environment always wins).
    """
    # Undone when the command ends: a command invoked in-process leaves the environment as it was.
    ctx.call_on_close(settings.load_dotenv_file().undo)


if __name__ == "__main__":
    main()

"""`pfo`: one command line for the demo, webhooks, the bank-connect flow, the ledger (`pfo sql`,
`pfo ledger migrate|maintain`) and the tenants file (`pfo tenants check`), plus the commands other
installed packages register under the `pfo_pipeline.commands` entry points (`pfo emulator`, from
`powens_emulator`, a package beside the product that `pfo_pipeline` never imports).

Every command reads its settings the same way (`pfo_pipeline.settings`): the environment, filled
in from the working directory's `.env` where it sets nothing (a variable set in the environment
always wins)."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

import click

from pfo_pipeline import settings
from pfo_pipeline.demo import demo
from pfo_pipeline.lake.cli import ledger_cli, sql_command
from pfo_pipeline.tenancy.cli import tenants_cli
from pfo_pipeline.webhooks.cli import connect, webhooks_cli

# Where other packages register `pfo` commands: `name = "package.module:click_command"`.
COMMAND_ENTRY_POINTS = "pfo_pipeline.commands"


class PluginCommandGroup(click.Group):
    """A group that also offers the commands registered under `COMMAND_ENTRY_POINTS`, each imported
    only when it is asked for (invoked, or described by `--help`). A built-in command keeps its
    name; a plugin that fails to load is listed and says why when invoked, so one broken package
    does not take the other commands with it."""

    def _plugins(self) -> dict[str, EntryPoint]:
        return {
            entry.name: entry
            for entry in entry_points(group=COMMAND_ENTRY_POINTS)
            if entry.name not in self.commands
        }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self._plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        entry = self._plugins().get(cmd_name)
        return None if entry is None else _load_plugin(entry)


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


main.add_command(demo, name="demo")
main.add_command(webhooks_cli, name="webhooks")
main.add_command(connect, name="connect")
main.add_command(sql_command, name="sql")
main.add_command(ledger_cli, name="ledger")
main.add_command(tenants_cli, name="tenants")


if __name__ == "__main__":
    main()

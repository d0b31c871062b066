"""`python -m powens_emulator serve …`: the emulator as its own program (what `pfo demo` starts in
a process of its own), the same command as `pfo emulator`."""

from powens_emulator.cli import emulator_cli

if __name__ == "__main__":
    emulator_cli(prog_name="python -m powens_emulator")

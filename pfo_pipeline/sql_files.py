"""SQL statements kept as `.sql` files beside the module that runs them, so they read (and diff)
as SQL rather than as Python string fragments.

A module's statements live in the `sql/` folder of its package and are loaded by name through
`importlib.resources`, so they work from a wheel as from a checkout (`pyproject.toml` ships
`*.sql` as package data). Values are always bound parameters (`$name` or `?`), never formatted in.
"""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def load_sql(module: str, name: str) -> str:
    """The statement `sql/<name>.sql` beside `module` (pass `__name__`), read once per process;
    `name` may hold a folder (`"migrations/0001_ledger"`)."""
    package = module.rpartition(".")[0]
    path = resources.files(package).joinpath("sql", *f"{name}.sql".split("/"))
    if not path.is_file():
        raise FileNotFoundError(f"no SQL file sql/{name}.sql in package {package}")
    return path.read_text(encoding="utf-8")


def sql_names(module: str, folder: str) -> list[str]:
    """The names (for `load_sql`) of the `.sql` files in `sql/<folder>` beside `module`, sorted."""
    package = module.rpartition(".")[0]
    files = resources.files(package).joinpath("sql", folder).iterdir()
    return sorted(
        f"{folder}/{f.name.removesuffix('.sql')}" for f in files if f.name.endswith(".sql")
    )

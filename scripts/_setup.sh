# Sourced by scripts/demo.sh and scripts/test.sh, or by you (`source scripts/_setup.sh`): a local
# venv with the project installed, on PATH, dbt in a venv of its own (`.venv-dbt/`), and a
# DAGSTER_HOME outside the checkout with an instance config. It changes nothing else in your shell
# (no `set` options, no `cd`) and is quick when nothing changed: it reinstalls only when
# pyproject.toml (or dbt_project/requirements.txt) did.
_pfo_setup() {
  local root base candidate digest stamp leftovers
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  # The interpreter to build the venv from: the first python3 on PATH that is not the venv's own.
  base=""
  for candidate in $(type -ap python3); do
    case "$candidate" in "$root"/.venv/*) continue ;; esac
    base="$candidate"
    break
  done
  if [ -z "$base" ]; then
    echo "pfo setup: python3 (3.11) is not on PATH" >&2
    return 1
  fi
  if ! "$base" -m uv --version >/dev/null 2>&1; then
    "$base" -m pip install --quiet --disable-pip-version-check uv || return 1
  fi
  if [ ! -x "$root/.venv/bin/python" ]; then
    "$base" -m uv venv --quiet --python "$base" "$root/.venv" || return 1
  fi
  stamp="$root/.venv/.pfo-installed"
  # The stamp also names how the venv is built, so a change of recipe reinstalls too.
  digest="$( (cat "$root/pyproject.toml"; echo "recipe: bytecode compiled") | sha256sum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    # `--python` pins the target: `python -m uv` would otherwise install into its own environment.
    (cd "$root" && "$base" -m uv pip install --quiet --python .venv/bin/python -e ".[dev]") ||
      return 1
    # dbt lives in .venv-dbt (below): a .venv from before that still holds dbt's packages.
    leftovers="$("$base" -m uv pip list --quiet --python "$root/.venv/bin/python" 2>/dev/null |
      awk '$1 ~ /^dbt-/ {print $1}')"
    if [ -n "$leftovers" ]; then
      # shellcheck disable=SC2086 # one package name per word
      "$base" -m uv pip uninstall --quiet --python "$root/.venv/bin/python" $leftovers || return 1
    fi
    # Compile every installed module once: with PYTHONDONTWRITEBYTECODE set (as on these
    # machines) each Python process (test workers, Dagster steps, dbt) would otherwise compile
    # dagster, dbt and duckdb from source again, about 5 s per process.
    "$root/.venv/bin/python" -m compileall -q -j 0 "$root"/.venv/lib/python3*/site-packages \
      >/dev/null 2>&1 || true
    echo "$digest" >"$stamp"
  fi
  # dbt in an environment of its own (`.venv-dbt/`, from dbt_project/requirements.txt): the
  # pipeline only runs it as a subprocess, and dbt-core importable in .venv would cost every
  # Dagster process ~1.1 s and ~84 MB (dagster-dbt imports it when it can).
  if [ ! -x "$root/.venv-dbt/bin/python" ]; then
    "$base" -m uv venv --quiet --python "$base" "$root/.venv-dbt" || return 1
  fi
  stamp="$root/.venv-dbt/.pfo-installed"
  digest="$( (cat "$root/dbt_project/requirements.txt"; echo "recipe: bytecode compiled") |
    sha256sum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    "$base" -m uv pip install --quiet --python "$root/.venv-dbt/bin/python" \
      -r "$root/dbt_project/requirements.txt" || return 1
    "$root/.venv-dbt/bin/python" -m compileall -q -j 0 "$root"/.venv-dbt/lib/python3*/site-packages \
      >/dev/null 2>&1 || true
    echo "$digest" >"$stamp"
  fi
  # Our own modules too (only those changed since the last time; __pycache__ is git-ignored).
  "$root/.venv/bin/python" -m compileall -q -j 0 "$root/pfo_pipeline" "$root/powens_emulator" \
    "$root/tests" "$root/benchmarks" >/dev/null 2>&1 || true
  # `dagster dev` / `dg dev` read .env from the working directory (and let it override the
  # environment): the emulator's demo credentials, under names only the sample tenants file uses,
  # so the README's UI path syncs the sample tenants with no manual export and never replaces a
  # real credential. An older .env holding them under the real names is brought up to date.
  "$root/.venv/bin/python" -m pfo_pipeline.demo_dotenv "$root/.env" || return 1
  case ":$PATH:" in *":$root/.venv/bin:"*) ;; *) export PATH="$root/.venv/bin:$PATH" ;; esac
  export VIRTUAL_ENV="$root/.venv" # what `dg` checks to know the project's venv is the active one
  export DAGSTER_HOME="${DAGSTER_HOME:-$HOME/.local/state/pfo-pipeline/dagster_home}"
  mkdir -p "$DAGSTER_HOME"
  # The instance settings the project relies on (run monitoring, one run per partition, the
  # ledger pool): written when missing, added to an existing file when absent there.
  "$root/.venv/bin/python" -m pfo_pipeline.instance_config "$DAGSTER_HOME/dagster.yaml" ||
    return 1
}
_pfo_setup
_pfo_status=$?
unset -f _pfo_setup
return "$_pfo_status" 2>/dev/null || exit "$_pfo_status"

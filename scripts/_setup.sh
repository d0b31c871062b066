# Sourced by scripts/demo.sh and scripts/test.sh: a local venv with the project installed, and a
# DAGSTER_HOME outside the checkout with an instance config (one DuckDB writer at a time).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! python3 -m uv --version >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check uv
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m uv venv --quiet --python "$(command -v python3)" .venv
fi
# `--python` pins the target: `python3 -m uv` would otherwise install into python3's own environment.
python3 -m uv pip install --quiet --python .venv/bin/python -e ".[dev]"
export PATH="$PWD/.venv/bin:$PATH"
export DAGSTER_HOME="${DAGSTER_HOME:-$HOME/.local/state/pfo-pipeline/dagster_home}"
mkdir -p "$DAGSTER_HOME"
if [ ! -f "$DAGSTER_HOME/dagster.yaml" ]; then
  cat > "$DAGSTER_HOME/dagster.yaml" <<'YAML'
# Written by pfo-pipeline's scripts. DuckDB allows one writer: every ledger-writing step is in the
# "duckdb_ledger" pool, limited to one step at a time across all runs.
concurrency:
  pools:
    default_limit: 1
telemetry:
  enabled: false
nux:
  enabled: false
YAML
fi

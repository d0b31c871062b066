#!/usr/bin/env bash
# Install everything (Chromium for the UI test included), check lint and format, run the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_ensure_chromium.sh
source scripts/_setup.sh
ruff check .
ruff format --check .
pytest -q "$@"

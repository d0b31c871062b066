#!/usr/bin/env bash
# Install everything, check lint and format, run the whole test suite.
source "$(dirname "$0")/_setup.sh"
ruff check .
ruff format --check .
pytest -q "$@"

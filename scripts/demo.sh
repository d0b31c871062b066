#!/usr/bin/env bash
# Install everything, then run the whole pipeline on the Powens emulator and print what landed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_setup.sh
pfo demo "$@"

#!/usr/bin/env bash
# Install everything, then run the whole pipeline on the Powens emulator and print what landed.
source "$(dirname "$0")/_setup.sh"
pfo demo "$@"

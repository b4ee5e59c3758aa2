#!/usr/bin/env bash
# Sets up everything from nothing (scripts/setup.sh) and runs the main job on this machine:
# azaion-demo in ./demo-root (replacing an earlier demo there). Extra arguments go to azaion-demo,
# e.g. `scripts/demo.sh --quick` or `scripts/demo.sh --epochs 20`; see `azaion-demo --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. .venv/bin/activate
export YOLO_OFFLINE=1 YOLO_AUTOINSTALL=false MPLBACKEND=Agg
exec azaion-demo --clean "$@"

#!/usr/bin/env bash
# Sets up everything from nothing (scripts/setup.sh) and runs the main job on this machine:
# azaion-demo in ./demo-root (replacing an earlier demo there), through a private RabbitMQ node it
# starts and stops itself; it ends with the path of report.html. Extra arguments go to azaion-demo,
# e.g. `scripts/demo.sh --quick`, `scripts/demo.sh --data my-voc --format voc`; see --help.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. .venv/bin/activate
export YOLO_OFFLINE=1 YOLO_AUTOINSTALL=false MPLBACKEND=Agg
exec azaion-demo --clean "$@"

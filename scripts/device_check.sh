#!/usr/bin/env bash
# The GPU check (benchmarks/device_check.py): one table of training throughput beside `yolo train`,
# peak GPU memory at batch 11 x 1280 for yolo11m.yaml, and azaion-infer beside the bare engine.
# Under 8 minutes on one GPU. `--dry-run` runs the same code on CPU at tiny sizes.
#
#   scripts/device_check.sh [--dry-run] [--json PATH] [--keep DIR]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$repo/.venv/bin/python}"
[[ -x "$python" ]] || python="$(command -v python3)"
export PYTHONPATH="$repo/src:$repo${PYTHONPATH:+:$PYTHONPATH}"
export YOLO_OFFLINE=1 YOLO_AUTOINSTALL=false MPLBACKEND=Agg
exec timeout "${DEVICE_CHECK_TIMEOUT_S:-480}" "$python" "$repo/benchmarks/device_check.py" "$@"

#!/usr/bin/env bash
# Sets up everything from nothing (scripts/setup.sh) and runs the main job on this machine.
# Until the end-to-end demo lands (issue #10) it builds a data tree in ./demo-root and shows the
# commands that exist. Extra arguments go to the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. .venv/bin/activate
export YOLO_OFFLINE=1 YOLO_AUTOINSTALL=false MPLBACKEND=Agg
if command -v azaion-demo >/dev/null 2>&1; then
    exec azaion-demo "$@"
fi
python - <<'PY'
from pathlib import Path
from azaion_training import DataTree
tree = DataTree(root=Path("demo-root")).create()
print(f"demo: data tree created under {tree.root.resolve()}")
PY
for command in azaion-queue azaion-augment azaion-train azaion-export azaion-infer azaion-visualise azaion-convert; do
    echo "demo: $command: $("$command" --help | sed -n 3p)"
done

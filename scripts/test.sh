#!/usr/bin/env bash
# Sets up everything from nothing (scripts/setup.sh), lints, and runs the whole test suite.
# The tests start the services they need themselves (RabbitMQ, an S3 server, an HTTP API) on
# 127.0.0.1. Extra arguments go to pytest, e.g. `scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
# Built things the tests need are kept outside the clone, each under a key of what it is made
# from, so a fresh clone on this machine reuses them: the RKNN environment (one per pin set) and
# the trained test models (pytest's cache, keyed by their recipes: tests/builds.py).
cache=${AZAION_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/azaion-training}
# The RKNN environment is made beside the main one (two installs at once; its output follows).
rknn_log=$(mktemp)
AZAION_RKNN_CACHE="$cache" scripts/setup_rknn.sh >"$rknn_log" 2>&1 &
rknn_pid=$!
trap '[ -z "$rknn_pid" ] || kill "$rknn_pid" 2>/dev/null || true; rm -f "$rknn_log"' EXIT
scripts/setup.sh
. .venv/bin/activate
export YOLO_OFFLINE=1 YOLO_AUTOINSTALL=false MPLBACKEND=Agg
echo "test: ruff"
ruff check .
ruff format --check .
echo "test: import layers (docs/architecture.md)"
lint-imports
echo "test: the RKNN toolkit's environment (scripts/setup_rknn.sh, kept in $cache)"
rknn=0
wait "$rknn_pid" || rknn=$?
rknn_pid=
cat "$rknn_log"
[ "$rknn" -eq 0 ] || [ "$rknn" -eq 3 ] || exit "$rknn"  # 3: not installable here; its tests skip
# The tests run in parallel processes (pytest-xdist; AZAION_TEST_WORKERS=0 runs them in this one):
# a module's tests stay in one process, so its fixtures are made once; the modules go out in the
# order tests/scheduling.py gives (the longest first, those waiting for a model being trained
# last), and the trained models are made once for all of them (tests/builds.py).
workers=${AZAION_TEST_WORKERS:-3}
echo "test: pytest ($workers workers)"
python -m pytest -o cache_dir="$cache/pytest" -n "$workers" --dist loadfile \
    --no-loadscope-reorder --durations=15 "$@"

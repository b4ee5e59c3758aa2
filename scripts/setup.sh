#!/usr/bin/env bash
# Installs everything the toolkit and its tests need on a Debian/Ubuntu machine with Python 3.10+:
#   - system packages: RabbitMQ (stream plugin, started by the demo and the tests), openssl,
#     OpenCV's libraries, Chromium (the tests open report.html in it headless);
#   - a virtual environment in .venv holding this package with its `dev` and `viz` extras.
# Safe to run again: each step is skipped when it is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
SYSTEM_PACKAGES=(rabbitmq-server openssl libgl1 libglib2.0-0 chromium)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for package in "${SYSTEM_PACKAGES[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing system packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 10):
    sys.exit(f"setup: Python 3.10 or newer is needed, this is {sys.version.split()[0]}")
PY

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
stamp="$VENV/.azaion-installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "setup: installing the package with its dev and viz extras into $VENV (uv)"
    # uv installs what pip would, from the same sources, but links each package from its cache
    # (~/.cache/uv; hard links on one file system): a new clone's 6.8 GB venv takes 20 s, most of
    # it compiling to bytecode, instead of pip's 83 s.
    # uv reads no pip configuration: scripts/uv_sources.py passes on pip's indexes, find-links and
    # constraints; unsafe-best-match is pip's rule (the best version on any index).
    "$VENV/bin/python" -m pip install -q 'uv>=0.9,<1'
    mapfile -t sources < <("$VENV/bin/python" -m pip config list |
        "$VENV/bin/python" scripts/uv_sources.py)
    "$VENV/bin/uv" pip install -q --python "$VENV/bin/python" --index-strategy unsafe-best-match \
        --compile-bytecode "${sources[@]}" -e '.[dev,viz]' pip
    rm -f "$VENV"/.azaion-installed-*
    touch "$stamp"
fi
echo "setup: ready ($("$VENV/bin/python" --version), $VENV)"

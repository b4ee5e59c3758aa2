#!/usr/bin/env bash
# Creates the separate virtual environment that converts ONNX models to RKNN (rk3588).
#
# rknn-toolkit2 pins numpy<=1.26.4 and torch<=2.4 and imports torch, so it cannot share the main
# environment. It is installed here with --no-deps and the exact versions below. The toolkit is
# 2.3.2, not 2.5.0: 2.5.0 fails every YOLO11 build in its DFL fusion rule ("IndexError" in
# _p_seperate_conv_rs_split; airockchip/rknn-toolkit2#581, and why Ultralytics pins <2.5).
#   - torch: the CPU wheel in /opt/wheels when this machine has one (2.13.0+cpu imports and converts
#     with the toolkit), otherwise torch 2.4.* CPU from the PyTorch index (the toolkit's own pin);
#   - only the packages the toolkit imports while loading, converting and simulating a model.
# Usage: scripts/setup_rknn.sh [--check] [VENV_DIR]
#   (default VENV_DIR: $AZAION_RKNN_VENV, else .venv-rknn at the repo root)
# Safe to run again: a stamp file records a finished install of exactly these pins (their
# fingerprint). With AZAION_RKNN_CACHE=DIR the environment is built once per fingerprint in
# DIR/rknn-{fingerprint} and VENV_DIR becomes a link to it, so a fresh clone reuses it
# (scripts/test.sh does this). --check builds nothing: exit 0 when the environment is ready,
# 3 when the toolkit cannot be installed on this machine, 5 when it is not built.
set -euo pipefail
cd "$(dirname "$0")/.."

CHECK=0
if [ "${1:-}" = --check ]; then CHECK=1; shift; fi

PYTHON=${PYTHON:-python3.11}
VENV=${1:-${AZAION_RKNN_VENV:-.venv-rknn}}
TOOLKIT="rknn-toolkit2==2.3.2"
TORCH_WHEEL=/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl
TORCH_INDEX=https://download.pytorch.org/whl/cpu
PINS=(
    "numpy==1.26.4"
    "onnx==1.18.0"
    "onnxruntime==1.20.1"
    "protobuf==4.25.4"
    "opencv-python-headless==4.10.0.84"
    "scipy==1.13.1"
    "psutil>=5.9"
    "ruamel.yaml>=0.17.21"
    "tqdm>=4.64.1"
    "fast-histogram==0.14"
    "setuptools<82"  # pkg_resources, which the toolkit imports, left setuptools 82
)

command -v "$PYTHON" >/dev/null || { echo "setup_rknn: $PYTHON not found (rknn-toolkit2 ships wheels for CPython 3.8 to 3.12)" >&2; exit 3; }
[ "$(uname -m)" = x86_64 ] || { echo "setup_rknn: rknn-toolkit2 needs x86-64 Linux, this is $(uname -m)" >&2; exit 3; }

fingerprint=$(printf '%s\n' "$TOOLKIT" "${PINS[@]}" "$(basename "$TORCH_WHEEL")" | sha256sum | cut -c1-16)
if [ -n "${AZAION_RKNN_CACHE:-}" ] && { [ -L "$VENV" ] || [ ! -e "$VENV" ]; }; then
    cached="$AZAION_RKNN_CACHE/rknn-$fingerprint"
    mkdir -p "$AZAION_RKNN_CACHE"
    if [ "$CHECK" -eq 0 ] || [ -d "$cached" ]; then
        mkdir -p "$cached"
        ln -sfn "$(cd "$cached" && pwd)" "$VENV"
    fi
fi
stamp="$VENV/.rknn-installed-$fingerprint"
if [ -f "$stamp" ]; then
    echo "setup_rknn: ready ($VENV)"
    exit 0
fi
if [ "$CHECK" -eq 1 ]; then
    echo "setup_rknn: $VENV holds no finished install of these pins" >&2
    exit 5
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$(readlink -f "$VENV")"
pip=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
if [ -f "$TORCH_WHEEL" ]; then
    echo "setup_rknn: installing torch from $TORCH_WHEEL"
    "${pip[@]}" "$TORCH_WHEEL"
else
    echo "setup_rknn: installing torch 2.4 (CPU) from $TORCH_INDEX"
    "${pip[@]}" "torch==2.4.*" --index-url "$TORCH_INDEX" --extra-index-url https://pypi.org/simple
fi
echo "setup_rknn: installing $TOOLKIT and its pinned dependencies into $VENV"
"${pip[@]}" "${PINS[@]}"
"${pip[@]}" --no-deps "$TOOLKIT"
"$VENV/bin/python" -c "from rknn.api import RKNN" || { echo "setup_rknn: rknn-toolkit2 does not import in $VENV" >&2; exit 4; }
rm -f "$VENV"/.rknn-installed-*
touch "$stamp"
echo "setup_rknn: ready ($VENV)"

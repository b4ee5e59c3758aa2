"""Fixtures of the export tests: the RKNN toolkit's environment (the trained model is the suite's
`detector`, tests/infer/conftest.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import require
from tests.infer.conftest import MODEL_IMGSZ

REPO = Path(__file__).resolve().parents[2]
IMGSZ = MODEL_IMGSZ
"""The detector's input size."""


@pytest.fixture(scope="session")
def rknn_venv() -> Path:
    """The RKNN environment, built by ``scripts/test.sh`` (``scripts/setup_rknn.sh``) before the
    tests run, never inside them.

    Skips where the toolkit cannot be installed on this platform (the script's exit code 3: not
    x86-64 Linux, or no Python 3.11). An environment that is not built skips here and fails in CI.
    """
    venv = REPO / ".venv-rknn"
    script = REPO / "scripts" / "setup_rknn.sh"
    checked = subprocess.run(
        [str(script), "--check", str(venv)], capture_output=True, text=True, check=False
    )
    if checked.returncode == 3:
        pytest.skip(f"rknn-toolkit2 cannot be installed here: {checked.stderr.strip()}")
    require(
        None
        if checked.returncode == 0
        else f"the RKNN environment is not built ({checked.stderr.strip()}): run {script}"
    )
    return venv

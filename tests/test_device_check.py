"""`scripts/device_check.sh --dry-run`: the GPU check's own code, on CPU at tiny sizes.

The dry run checks that the script runs end to end and prints its one table (training beside
`yolo train`, the memory row, inference beside the bare engine); its numbers mean nothing. On a
GPU the same script runs at full size (docs/operations.md says when it last did).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, subprocess_env


@pytest.mark.slow
def test_the_dry_run_prints_every_row_of_the_table(tmp_path: Path) -> None:
    record = tmp_path / "check.json"
    done = subprocess.run(
        [str(REPO / "scripts" / "device_check.sh"), "--dry-run", "--json", str(record)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=subprocess_env({"PYTHON": sys.executable}),
        timeout=480,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(record.read_text())["rows"]
    checks = [row["check"] for row in rows]
    assert [c.split(",")[0] for c in checks] == [
        "train images/s at 32",
        "train images/s at 64",
        "peak GPU memory",
        "infer fps",
        "infer fps",
        "azaion-train end to end on cpu (form",
    ]
    training = [row for row in rows if row["check"].startswith("train")]
    assert all(float(row["ours"]) > 0 and row["ratio"] > 0 for row in training)
    assert "onnxruntime/CPUExecutionProvider" in checks[3]  # the provider that ran is named
    assert rows[2]["ours"] == "n/a (no GPU)"
    assert all(row["ratio"] > 0 for row in rows[3:5])
    assert (
        rows[5]["ours"].startswith("exit 0 in ")
        and "installed: True; mAP50 " in rows[5]["baseline"]
    )
    assert "device check on CPU (dry run)" in done.stdout
    assert all(check in done.stdout for check in checks)


def test_without_a_gpu_the_full_check_refuses_with_one_line(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the full check would run")
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "device_check.py")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=subprocess_env(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "device_check: no CUDA GPU here; --dry-run checks the script on CPU"
    ]

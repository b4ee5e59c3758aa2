"""Every console script is installed, answers --help with exit 0 and lists its environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

COMMANDS = [
    "azaion-queue",
    "azaion-augment",
    "azaion-train",
    "azaion-export",
    "azaion-infer",
    "azaion-visualise",
    "azaion-convert",
    "azaion-model",
    "azaion-queue-publish",
    "azaion-demo",
]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("command", COMMANDS)
def test_help_exits_zero(command: str) -> None:
    executable = BIN / command
    assert executable.exists(), f"{command} is not installed next to {sys.executable}"
    result = subprocess.run([executable, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--config" in result.stdout
    assert "AZAION_ROOT_DIR" in result.stdout

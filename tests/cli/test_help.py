"""Every console script is installed, answers --help with exit 0 and lists its environment."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

COMMANDS = sorted(
    point.name
    for point in entry_points(group="console_scripts")
    if point.value.startswith("azaion_training.")
)
"""Every console script the installed package declares (pyproject's [project.scripts])."""
BIN = Path(sys.executable).parent


def test_every_cli_module_is_a_declared_command() -> None:
    cli = Path(__file__).resolve().parents[2] / "src" / "azaion_training" / "cli"
    modules = sorted(f"azaion_training.cli.{p.stem}:main" for p in cli.glob("[!_]*.py"))
    declared = sorted(
        point.value for point in entry_points(group="console_scripts") if point.name in COMMANDS
    )
    assert declared == modules


@pytest.mark.parametrize("command", COMMANDS)
def test_help_exits_zero(command: str) -> None:
    executable = BIN / command
    assert executable.exists(), f"{command} is not installed next to {sys.executable}"
    result = subprocess.run([executable, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--config" in result.stdout
    assert "AZAION_ROOT_DIR" in result.stdout

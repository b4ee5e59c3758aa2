"""What tests of several areas share: running a console script as a process, and waiting."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def subprocess_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment, with this checkout's ``src`` (and the repository, for ``tests``) first on
    ``PYTHONPATH``, so a child process runs the code under test."""
    path = [str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, **(extra or {}), "PYTHONPATH": os.pathsep.join(filter(None, path))}


def run_cli(
    command: str,
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Runs ``azaion_training.cli.{command}`` in a child Python and waits for it (text output)."""
    return subprocess.run(
        [sys.executable, "-m", f"azaion_training.cli.{command}", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=subprocess_env(env),
        timeout=timeout,
        check=False,
    )


def wait_for(
    condition: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    details: Callable[[], str] | None = None,
) -> None:
    """Polls ``condition`` until it holds; fails naming ``what`` (and ``details()``) after
    ``timeout`` seconds. A bound on a wait, never a measurement."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            extra = f"\n{details()}" if details is not None else ""
            raise AssertionError(f"timed out waiting for {what}{extra}")
        time.sleep(0.02)


def recipe_key(name: str, *parts: object) -> str:
    """A cache key that changes whenever what built the cached thing changes.

    Args:
        name: a readable prefix.
        parts: functions and modules (hashed by their source), files (by their bytes) and plain
            values (by ``repr``): the recipe and the code it runs.
    """
    import hashlib
    import inspect

    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            digest.update(part.read_bytes())
        elif inspect.isfunction(part) or inspect.ismodule(part) or inspect.isclass(part):
            digest.update(inspect.getsource(part).encode())
        else:
            digest.update(repr(part).encode())
    return f"{name}-{digest.hexdigest()[:16]}"


def require(reason: str | None) -> None:
    """Skips the calling test (fails it in CI, where everything must run) when ``reason`` is set.

    ``reason`` says what is missing, e.g. `tests.services.rabbitmq.available()`.
    """
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"required in CI: {reason}", pytrace=False)
    pytest.skip(reason)

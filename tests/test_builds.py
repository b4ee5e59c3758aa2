"""The suite's kept builds (`tests.builds`): made once under a lock, never half-finished."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.builds import Build, built, finish_prebuild, needed
from tests.helpers import subprocess_env


def _make_slowly(work: Path) -> None:
    """A build that takes a while and counts how often it was made (in the root's ``made``)."""
    time.sleep(0.5)
    (work / "model.pt").write_text("weights")
    with (work.parent / "made").open("a") as made:
        made.write("x")


SLOW = Build(fixture="slow", key=lambda: "slow-1", make=_make_slowly, products=("model.pt",))


def test_parallel_askers_make_a_build_once(tmp_path: Path) -> None:
    ask = "import sys, pathlib, tests.test_builds as t; t.built(pathlib.Path(sys.argv[1]), t.SLOW)"
    command = [sys.executable, "-c", ask, str(tmp_path)]
    askers = [subprocess.Popen(command, env=subprocess_env()) for _ in range(3)]
    assert [asker.wait(timeout=120) for asker in askers] == [0, 0, 0]
    assert (tmp_path / "made").read_text() == "x"  # one made it, two waited for it
    assert (built(tmp_path, SLOW) / "model.pt").is_file()
    assert (tmp_path / "made").read_text() == "x"  # and a later asker takes it as it is


def test_a_failed_build_leaves_nothing_finished_and_is_made_again(tmp_path: Path) -> None:
    def crash(work: Path) -> None:
        (work / "model.pt").write_text("half")
        raise RuntimeError("training diverged")

    broken = Build(fixture="slow", key=lambda: "slow-1", make=crash, products=("model.pt",))
    with pytest.raises(RuntimeError, match="training diverged"):
        built(tmp_path, broken)
    assert not (tmp_path / "slow-1").exists()
    assert (built(tmp_path, SLOW) / "model.pt").read_text() == "weights"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers


def test_a_build_without_its_products_is_an_error(tmp_path: Path) -> None:
    empty = Build(fixture="empty", key=lambda: "empty-1", make=lambda work: None, products=("a",))
    with pytest.raises(RuntimeError, match="the empty build made no a"):
        built(tmp_path, empty)
    assert not (tmp_path / "empty-1").exists()


def test_the_builds_a_session_needs_are_those_its_tests_ask_for() -> None:
    items = [
        SimpleNamespace(nodeid="tests/a.py::one", fixturenames=["tmp_path", "tiny_model"]),
        SimpleNamespace(nodeid="tests/b.py::one", fixturenames=["onnx_engine", "detector"]),
    ]
    assert [b.fixture for b in needed(items)] == ["detector", "tiny_model"]  # type: ignore[arg-type]
    assert needed(items[:0]) == []


def test_the_session_waits_for_its_prebuild_unless_interrupted_or_past_the_bound() -> None:
    def sleeper(seconds: float) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])

    done = sleeper(0.2)
    finish_prebuild(done, interrupted=False)
    assert done.returncode == 0  # waited for
    interrupted = sleeper(60)
    finish_prebuild(interrupted, interrupted=True)
    assert interrupted.returncode == -signal.SIGTERM
    stuck = sleeper(60)
    finish_prebuild(stuck, interrupted=False, timeout=0.5)
    assert stuck.returncode == -signal.SIGTERM
    finish_prebuild(None, interrupted=True)  # nothing was started

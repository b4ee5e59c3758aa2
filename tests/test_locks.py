"""`locks`: one writer per role, by real processes (a holder, a second writer, a kill -9)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from azaion_training.errors import BusyError, UnsafePathError
from azaion_training.locks import hold, holder

_HOLDER = """
import sys, time
from pathlib import Path
from azaion_training.locks import hold
lock = hold(Path(sys.argv[1]), role="test-role")
print("held", flush=True)
time.sleep(120)
"""


def _start_holder(path: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline() == "held\n"
    return process


def test_a_second_writer_fails_at_once_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / ".azaion-test.lock"
    process = _start_holder(path)
    try:
        started = time.monotonic()
        with pytest.raises(BusyError, match=rf"another test-role .*PID {process.pid} holds"):
            hold(path, role="test-role")
        assert time.monotonic() - started < 1.0
        assert holder(path) == process.pid
    finally:
        process.kill()
        process.wait()
    with hold(path, role="test-role"):  # the kernel released it with the killed holder
        assert path.read_text() == f"{os.getpid()}\n"
    assert holder(path) is None


def test_released_on_sigkill_even_with_the_file_left(tmp_path: Path) -> None:
    path = tmp_path / "role.lock"
    process = _start_holder(path)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert path.exists()
    hold(path, role="test-role").release()


@pytest.mark.parametrize("dangling", [True, False])
def test_a_planted_link_is_refused_and_nothing_is_created(tmp_path: Path, dangling: bool) -> None:
    target = tmp_path / "outside.txt"
    if not dangling:
        target.write_text("theirs")
    link = tmp_path / "root" / ".azaion-queue.lock"
    link.parent.mkdir()
    link.symlink_to(target)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        hold(link, role="azaion-queue")
    assert target.exists() is not dangling
    if not dangling:
        assert target.read_text() == "theirs"


def test_a_fifo_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fifo.lock"
    os.mkfifo(path)
    with pytest.raises(UnsafePathError, match="not a regular file"):
        hold(path, role="test-role")

"""The daemons' stop signals, sent for real to a child process."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import subprocess_env

SYNC = """
import threading, time
from azaion_training.shutdown import shutdown_signals
stop = threading.Event()
try:
    with shutdown_signals(first=lambda: (stop.set(), print("first", flush=True))):
        print("ready", flush=True)
        while True:  # work that ignores the warm stop, so only a second signal ends it
            time.sleep(0.01)
except KeyboardInterrupt:
    print("interrupted", stop.is_set(), flush=True)
"""

ASYNC = """
import asyncio
from azaion_training.shutdown import shutdown_signals

async def main():
    task, stop = asyncio.current_task(), asyncio.Event()
    with shutdown_signals(first=stop.set, second=task.cancel, loop=task.get_loop()):
        print("ready", flush=True)
        await stop.wait()
        print("first", flush=True)
        await asyncio.sleep(3600)  # the work in hand that a second signal cuts short

try:
    asyncio.run(main())
except asyncio.CancelledError:
    print("cancelled", flush=True)
"""


def _start(code: str) -> subprocess.Popen[str]:
    env = subprocess_env()
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    return process


@pytest.mark.parametrize(("code", "last"), [(SYNC, "interrupted True\n"), (ASYNC, "cancelled\n")])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_first_signal_stops_warmly_second_at_once(code: str, last: str, signum: int) -> None:
    process = _start(code)
    assert process.stdout is not None
    try:
        process.send_signal(signum)
        assert process.stdout.readline() == "first\n"
        process.send_signal(signum)
        assert process.stdout.readline() == last
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
    stderr = process.stderr.read() if process.stderr else ""
    assert "Traceback" not in stderr


@pytest.mark.parametrize("code", [SYNC, ASYNC])
def test_sigusr1_dumps_every_thread_and_keeps_running(code: str) -> None:
    process = _start(code)
    assert process.stdout is not None and process.stderr is not None
    try:
        process.send_signal(signal.SIGUSR1)
        assert "Current thread" in process.stderr.readline() + process.stderr.readline()
        process.send_signal(signal.SIGTERM)
        assert process.stdout.readline() == "first\n"  # still alive and listening
    finally:
        process.kill()
        process.wait(timeout=60)

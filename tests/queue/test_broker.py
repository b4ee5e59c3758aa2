"""The private RabbitMQ node (`queue.broker`): every listener on 127.0.0.1, private files, and
no process left after any signal at any moment (real nodes, real signals)."""

from __future__ import annotations

import ipaddress
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import helpers
from tests.services.rabbitmq import RabbitMQNode, available

pytestmark = [pytest.mark.slow, pytest.mark.rabbitmq]


def processes_of(marker: str) -> list[int]:
    """PIDs whose command line holds ``marker`` (the node's folder or epmd port)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = next(
                line
                for line in (entry / "status").read_text().splitlines()
                if line.startswith("State:")
            )
        except (OSError, StopIteration):
            continue
        if marker in cmdline and "zombie" not in state:
            found.append(int(entry.name))
    return found


def node_processes(node: RabbitMQNode) -> list[int]:
    return sorted(set(processes_of(str(node.base)) + processes_of(f"-port {node.epmd_port}")))


def listening(pids: list[int]) -> dict[int, str]:
    """Port -> local address of every TCP socket in LISTEN held by ``pids``."""
    inodes = set()
    for pid in pids:
        with_fds = Path(f"/proc/{pid}/fd")
        for fd in with_fds.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:
                address, port = local.split(":")
                found[int(port, 16)] = _address(address)
    return found


def _address(hex_address: str) -> str:
    """The /proc/net form (32-bit words in host order, little-endian here) as text."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[index : index + 4][::-1] for index in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def test_every_listener_is_on_loopback(rabbitmq: RabbitMQNode) -> None:
    ports = listening(node_processes(rabbitmq))
    expected = {rabbitmq.amqp_port, rabbitmq.stream_port, rabbitmq.dist_port, rabbitmq.epmd_port}
    assert expected <= set(ports), ports
    assert set(ports.values()) <= {"127.0.0.1", "::1"}, ports  # epmd adds ::1 itself


def test_its_files_are_private(rabbitmq: RabbitMQNode) -> None:
    assert stat.S_IMODE(rabbitmq.base.stat().st_mode) == 0o700
    for name in ("rabbitmq.conf", "enabled_plugins", "rabbitmq-env.conf"):
        assert stat.S_IMODE((rabbitmq.base / name).stat().st_mode) == 0o600, name
    assert rabbitmq.password in (rabbitmq.base / "rabbitmq.conf").read_text()


# The owner starts with SIGTERM and SIGINT as a shell's child has them, whatever the test process
# has: ignored signals pass on to children (the suite once ignored SIGTERM from the moment the
# doctests imported augment/_forkserver.py, and the owner would not stop; the import test of
# tests/test_architecture.py now guards that).
_OWNER = """
import signal
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
signal.signal(signal.SIGTERM, signal.SIG_DFL)
signal.signal(signal.SIGINT, signal.default_int_handler)
import sys
from pathlib import Path
from azaion_training.queue.broker import RabbitMQNode
node = RabbitMQNode.create(Path(sys.argv[1]))
print(node.epmd_port, flush=True)
node.start()
print("started", flush=True)
import time
time.sleep(300)
"""


@pytest.mark.parametrize(
    ("signum", "after"),
    [
        (signal.SIGINT, 1.5),  # Ctrl-C while it starts
        (signal.SIGTERM, 1.5),
        (signal.SIGKILL, 1.5),
        (signal.SIGKILL, None),  # once it runs
        (signal.SIGTERM, None),
    ],
)
def test_no_process_is_left_after_a_signal(
    tmp_path: Path, signum: int, after: float | None
) -> None:
    helpers.require(available())
    base = tmp_path / "node"
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER, str(base)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=helpers.subprocess_env({}),
        text=True,
    )
    assert owner.stdout is not None
    epmd_port = int(owner.stdout.readline())
    if after is None:
        assert owner.stdout.readline() == "started\n"
    else:
        time.sleep(after)
        assert processes_of(str(base)), "the server had not started yet: the test proves nothing"
    owner.send_signal(signum)
    owner.wait(timeout=60)
    deadline = time.monotonic() + 30
    left = ["?"]
    while time.monotonic() < deadline:
        left = processes_of(str(base)) + processes_of(f"-port {epmd_port}")
        if not left:
            break
        time.sleep(0.2)
    assert left == [], f"left running after {signal.Signals(signum).name}: {left}"

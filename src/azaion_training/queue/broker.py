"""A private RabbitMQ node with the stream plugin, started and stopped by the demo and the tests.

The node runs from the Debian ``rabbitmq-server`` package but shares nothing with a system node:
its own node name, Erlang port mapper (epmd) on a private port, data, log, plugin and config files
under one folder (mode 0700, its files 0600: the config holds the password), a fresh Erlang
cookie (``HOME`` points into that folder) and every listener on 127.0.0.1 only: AMQP, stream,
Erlang distribution (``inet_dist_use_interface``) and epmd (``-address``, ``ERL_EPMD_ADDRESS``).

No process outlives its owner, whatever signal stops the owner and whenever: the server runs as the
Erlang VM itself (the start script ``exec``s it rather than staying as a proxy), in a process group
of its own, and it and epmd get SIGKILL from the kernel when the process that started them dies
(``PR_SET_PDEATHSIG``); an exception or Ctrl-C during `RabbitMQNode.start` stops both. It can be
stopped and started again with its data kept, which is how the reconnect tests take the broker away
from a running consumer. `RabbitMQNode.queue_settings` gives the settings our consumer and producer
use to reach it.

Example:
    >>> with RabbitMQNode.create(tmp_path) as node:  # doctest: +SKIP
    ...     node.stream_port
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from azaion_training.config import QueueSettings
from azaion_training.errors import QueueError
from azaion_training.fs import atomic_writer

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
EPMD = shutil.which("epmd") or "/usr/bin/epmd"
HOST = "127.0.0.1"
USER = "azaion-local"
_PR_SET_PDEATHSIG = 1
_DIST_ON_LOOPBACK = "-kernel inet_dist_use_interface {127,0,0,1}"


def available() -> str | None:
    """``None`` when a node can be started here, else the reason it cannot."""
    if not (RABBITMQ_BIN / "rabbitmq-server").exists():
        return "the rabbitmq-server package is not installed (/usr/lib/rabbitmq/bin)"
    if not Path(EPMD).exists():
        return "epmd (Erlang) is not installed"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


def _group_ended(leader: subprocess.Popen[bytes], timeout: float) -> bool:
    """Waits up to ``timeout`` s until no process of ``leader``'s group is left (the leader
    reaped); whether none is."""
    deadline = time.monotonic() + timeout
    while True:
        leader.poll()
        try:
            os.killpg(leader.pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


@dataclass(frozen=True)
class ServerTls:
    """The PEM files of a TLS listener: the CA that signs client certificates, the server's
    certificate and its key."""

    ca: Path
    cert: Path
    key: Path


@dataclass
class RabbitMQNode:
    """One RabbitMQ node under ``base``; build it with `create`, then `start` / `stop`."""

    base: Path
    amqp_port: int
    stream_port: int
    dist_port: int
    epmd_port: int
    password: str
    nodename: str
    tls_port: int | None = None
    """The stream's TLS listener (`create` with ``tls``), beside the plain one."""
    _server: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _epmd: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @classmethod
    def create(
        cls, base: Path, *, name: str = "azaion-test", tls: ServerTls | None = None
    ) -> RabbitMQNode:
        """Prepares the folder, ports and configuration of a node (nothing is started).

        Args:
            base: the node's folder (created).
            name: the start of its Erlang node name.
            tls: also listen for stream connections over TLS, with this certificate.
        """
        base.mkdir(parents=True, exist_ok=True)
        node = cls(
            base=base,
            amqp_port=free_port(),
            stream_port=free_port(),
            dist_port=free_port(),
            epmd_port=free_port(),
            password=secrets.token_hex(12),
            nodename=f"{name}-{os.getpid()}-{secrets.token_hex(3)}@localhost",
            tls_port=None if tls is None else free_port(),
        )
        node._write_config(tls)
        return node

    @property
    def user(self) -> str:
        return USER

    def queue_settings(self, *, stream: str, **fields: object) -> QueueSettings:
        """Settings that reach this node's stream port with its own credentials."""
        return QueueSettings(
            host=HOST,
            port=self.stream_port,
            user=USER,
            password=self.password,
            stream=stream,
            **fields,  # type: ignore[arg-type]
        )

    @property
    def log_file(self) -> Path:
        return self.base / "log" / f"{self.nodename}.log"

    def environment(self) -> dict[str, str]:
        """The environment the server and its CLI tools run with."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("RABBITMQ_", "ERL_"))
        }
        env.update(
            HOME=str(self.base / "home"),
            ERL_EPMD_PORT=str(self.epmd_port),
            ERL_EPMD_ADDRESS=HOST,
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_NODE_IP_ADDRESS=HOST,
            RABBITMQ_NODE_PORT=str(self.amqp_port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.base / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.base / "log"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.base / "enabled_plugins"),
            RABBITMQ_CONFIG_FILE=str(self.base / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.base / "advanced.config"),
            RABBITMQ_CONF_ENV_FILE=str(self.base / "rabbitmq-env.conf"),
            RABBITMQ_PID_FILE=str(self.base / "rabbitmq.pid"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=_DIST_ON_LOOPBACK,
            RABBITMQ_CTL_ERL_ARGS=_DIST_ON_LOOPBACK,
            RUNNING_UNDER_SYSTEMD="1",  # the script execs the VM: no proxy shell to outlive us
        )
        return env

    def _write_config(self, tls: ServerTls | None) -> None:
        os.chmod(self.base, 0o700)
        (self.base / "home").mkdir(mode=0o700, exist_ok=True)
        (self.base / "log").mkdir(mode=0o700, exist_ok=True)
        _write_private(self.base / "enabled_plugins", "[rabbitmq_stream].\n")
        _write_private(self.base / "rabbitmq-env.conf", "")
        _write_private(
            self.base / "rabbitmq.conf",
            "\n".join(
                [
                    f"listeners.tcp.1 = {HOST}:{self.amqp_port}",
                    f"stream.listeners.tcp.1 = {HOST}:{self.stream_port}",
                    f"stream.advertised_host = {HOST}",
                    f"stream.advertised_port = {self.stream_port}",
                    "loopback_users = none",
                    f"default_user = {USER}",
                    f"default_pass = {self.password}",
                    "disk_free_limit.absolute = 1MB",
                    "log.console = false",
                    "log.file.level = info",
                    *([] if tls is None else self._tls_config(tls)),
                    "",
                ]
            ),
        )

    def _tls_config(self, tls: ServerTls) -> list[str]:
        return [
            f"stream.listeners.ssl.1 = {HOST}:{self.tls_port}",
            f"stream.advertised_tls_port = {self.tls_port}",
            f"ssl_options.cacertfile = {tls.ca}",
            f"ssl_options.certfile = {tls.cert}",
            f"ssl_options.keyfile = {tls.key}",
            "ssl_options.verify = verify_peer",
            "ssl_options.fail_if_no_peer_cert = false",
        ]

    def start(self, *, timeout: float = 120.0) -> None:
        """Starts epmd (once) and the server; returns when the stream port accepts connections.

        Call it from the thread that outlives the node: both die with the thread that started
        them (see the module).

        Raises:
            QueueError: the server exited or did not open its ports in time (log tail included).
        """
        try:
            self._start(timeout)
        except BaseException:  # an error, a timeout, Ctrl-C: nothing is left running
            self.close()
            raise

    def _start(self, timeout: float) -> None:
        env = self.environment()
        if self._epmd is None or self._epmd.poll() is not None:
            self._epmd = subprocess.Popen(  # noqa: S603 - fixed executable, no shell
                [EPMD, "-port", str(self.epmd_port), "-address", HOST],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=_dying_with(os.getpid()),
            )
        output = open(self.base / "server.out", "ab")  # noqa: SIM115 - lives as long as the server
        self._server = subprocess.Popen(  # noqa: S603 - fixed executable, no shell
            [str(RABBITMQ_BIN / "rabbitmq-server")],
            env=env,
            cwd=self.base,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_dying_with(os.getpid()),
        )
        output.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._server.poll() is not None:
                raise QueueError(f"rabbitmq-server exited early:\n{self.tail()}")
            ports = [self.stream_port, self.amqp_port, *([self.tls_port] if self.tls_port else [])]
            if all(port_open(port) for port in ports):
                return
            time.sleep(0.25)
        raise QueueError(f"rabbitmq-server did not open its ports in {timeout} s:\n{self.tail()}")

    def stop(self, *, timeout: float = 60.0) -> None:
        """Stops the server: SIGTERM to its process group, SIGKILL of what is left of the group
        after ``timeout`` seconds; returns when none of it runs. The data is kept."""
        server, self._server = self._server, None
        if server is None:
            return
        _signal_group(server.pid, signal.SIGTERM)
        if not _group_ended(server, timeout):
            _signal_group(server.pid, signal.SIGKILL)
            _group_ended(server, 10)

    def close(self) -> None:
        """Stops the server (`stop`) and the node's own epmd."""
        self.stop()
        epmd, self._epmd = self._epmd, None
        if epmd is not None and epmd.poll() is None:
            epmd.terminate()
            try:
                epmd.wait(timeout=10)
            except subprocess.TimeoutExpired:
                epmd.kill()
                epmd.wait(timeout=10)

    @property
    def running(self) -> bool:
        return self._server is not None and self._server.poll() is None

    def tail(self, lines: int = 40) -> str:
        """The last lines of the server's output and log, for error messages."""
        texts = []
        for path in (self.base / "server.out", self.log_file):
            if path.exists():
                texts.append(
                    f"--- {path.name}\n"
                    + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
                )
        return "\n".join(texts)

    def __enter__(self) -> RabbitMQNode:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _write_private(path: Path, text: str) -> None:
    """Writes a file only its owner may read, from the first instant (mode 0600)."""
    with atomic_writer(path, mode=0o600) as handle:
        handle.write(text.encode("utf-8"))


def _dying_with(parent: int) -> Callable[[], None]:
    """What a child runs before exec so that the kernel sends it SIGKILL when ``parent`` (the
    thread that started it) dies; a child whose parent is already gone exits at once. The C
    function is looked up here, before the fork."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def in_child() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return in_child

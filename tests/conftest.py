"""Shared fixtures: a clean environment, a throwaway data tree and settings pointing at it."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from azaion_training.config import ENVIRONMENT, Settings, load_settings
from azaion_training.fs import DataTree
from tests.builds import builds_root, finish_prebuild, needed, start_prebuild
from tests.helpers import require
from tests.infer.conftest import detector  # noqa: F401  (the trained test detector, for every area)
from tests.network import loopback_only
from tests.scheduling import ModuleTimes, Plan, order
from tests.services.rabbitmq import RabbitMQNode, available

# Ultralytics must never reach the network in tests (weights, fonts, datasets, telemetry).
os.environ["YOLO_OFFLINE"] = "1"
os.environ["YOLO_AUTOINSTALL"] = "false"
os.environ.setdefault("YOLO_VERBOSE", "false")
os.environ["MPLBACKEND"] = "Agg"
os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"  # its import-time version check calls PyPI

_OUR_PREFIXES = ("AZAION_", "RABBITMQ_", "TRAINING_", "EXPORT_", "INFER_")
_PREBUILD = pytest.StashKey[subprocess.Popen[bytes] | None]()
_PLAN = pytest.StashKey[Plan]()
_PLAN_INPUT = "azaion_plan"


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _plan(config: pytest.Config) -> Plan:
    """The plan of the order (`tests.scheduling`): made by the session's process, given to its
    workers."""
    if _is_worker(config):
        return Plan.from_json(config.workerinput[_PLAN_INPUT])  # type: ignore[attr-defined]
    if _PLAN not in config.stash:
        config.stash[_PLAN] = Plan.of(config)
    return config.stash[_PLAN]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:  # type: ignore[no-untyped-def]
    """pytest-xdist's controller, for each worker it starts: the plan of the order."""
    node.workerinput[_PLAN_INPUT] = _plan(node.config).to_json()


def pytest_configure(config: pytest.Config) -> None:
    if not _is_worker(config):
        config.pluginmanager.register(ModuleTimes(config), "azaion-module-times")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Modules waiting for an unfinished build last, the longest first (`tests.scheduling`)."""
    order(items, _plan(config))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Starts making the models the selected tests need in the background: once per session, by
    the only process or by the first pytest-xdist worker (all of them collect every test)."""
    if os.environ.get("PYTEST_XDIST_WORKER", "gw0") == "gw0":
        builds = needed(session.items)
        if builds:
            session.config.stash[_PREBUILD] = start_prebuild(builds_root(session.config), builds)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Waits for the prebuild (another worker may still need it); stops it if interrupted."""
    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    finish_prebuild(session.config.stash.get(_PREBUILD, None), interrupted=interrupted)


@pytest.fixture(autouse=True, scope="session")
def network_guard() -> Iterator[list[str]]:
    """Fails any connection or name lookup that leaves the machine, for every test
    (`tests.network.loopback_only`); the attempts are the fixture's value."""
    with loopback_only() as attempts:
        yield attempts


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Removes every variable the toolkit reads, so the developer's shell cannot leak in."""
    for name in list(os.environ):
        if name in ENVIRONMENT or name.startswith(_OUR_PREFIXES):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Undoes `setup_logging` done by in-process CLI calls, so handlers never leak between tests."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quietened = ("botocore", "boto3", "urllib3", "s3transfer", "matplotlib", "PIL")
    levels = {name: logging.getLogger(name).level for name in quietened}
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


@pytest.fixture
def tree(tmp_path: Path) -> DataTree:
    """A created data tree under a temporary root."""
    return DataTree(root=tmp_path / "azaion").create()


@pytest.fixture
def settings(tree: DataTree, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Settings]:
    """Settings whose root is the temporary tree, read with no config file and no .env."""
    monkeypatch.chdir(tmp_path)
    yield load_settings(environ={"AZAION_ROOT_DIR": str(tree.root)}, env_file=None)


@pytest.fixture(scope="session")
def rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQNode]:
    """A private RabbitMQ node with the stream plugin on 127.0.0.1, for the whole session."""
    require(available())
    node = RabbitMQNode.create(tmp_path_factory.mktemp("rabbitmq"))
    node.start()
    try:
        yield node
    finally:
        node.close()


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs of the test's own (mode 0700), to fill up: real ENOSPC, no mocks.

    Mounting needs root, as CI runs; elsewhere the test is skipped, but in CI it fails.
    """
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    require(None if done.returncode == 0 else f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)

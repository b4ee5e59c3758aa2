"""`azaion-augment` as a command: one pass in-process, the daemon as a subprocess."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from azaion_training.cli.augment import main
from azaion_training.demo.world import write_annotations
from azaion_training.fs import DataTree
from azaion_training.labels import read_label
from tests.augment.helpers import HEIGHT, WIDTH, files, sample_files
from tests.helpers import subprocess_env, wait_for


def _daemon(root: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """The daemon in a process group of its own (as a service manager runs it)."""
    env = subprocess_env()
    command = [sys.executable, "-m", "azaion_training.cli.augment", "--root", str(root)]
    with open(log, "wb") as stderr:
        return subprocess.Popen(
            [*command, "--workers", "2", *extra],
            env=env,
            stdout=stderr,
            stderr=stderr,
            start_new_session=True,
        )


def _group_gone(daemon: subprocess.Popen[bytes]) -> bool:
    """True when no process of the daemon's group (fork server, workers) is left."""
    try:
        os.killpg(daemon.pid, 0)
    except ProcessLookupError:
        return True
    return False


def _signal(daemon: subprocess.Popen[bytes], signum: int, *, group: bool) -> None:
    if group:
        os.killpg(daemon.pid, signum)
    else:
        daemon.send_signal(signum)


def test_once_makes_the_samples_and_exits_zero(
    tree: DataTree, annotations: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--once", "--root", str(tree.root), "--workers", "2"]) == 0
    assert set(files(tree.data_processed)) == set().union(*map(sample_files, annotations))
    assert "augment pass: 3 sources (3 made, 0 unchanged), 24 samples" in capsys.readouterr().err


def test_missing_data_folder_exits_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--once", "--root", str(tmp_path / "nowhere")]) == 1
    assert "azaion-augment: error: source folder" in capsys.readouterr().err


def test_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--once", "--workers", "--interval", "AZAION_AUGMENT_WORKERS"):
        assert option in text


@pytest.mark.slow
@pytest.mark.parametrize(
    "group",
    [
        False,  # SIGTERM to the daemon alone (docker stop, kill PID)
        True,  # SIGTERM to its whole process group (systemd, Ctrl-C in a terminal)
    ],
)
def test_sigterm_mid_pass_finishes_cleanly(tree: DataTree, tmp_path: Path, group: bool) -> None:
    names = write_annotations(tree.data, 60, width=WIDTH, height=HEIGHT, seed=3)
    log = tmp_path / "daemon.log"
    daemon = _daemon(tree.root, log, "--interval", "600")
    try:
        wait_for(
            lambda: any(tree.data_processed.labels.iterdir()), timeout=120, what="first sample"
        )
        _signal(daemon, signal.SIGTERM, group=group)
        assert daemon.wait(timeout=120) == 0, log.read_text()
        wait_for(lambda: _group_gone(daemon), timeout=30, what="workers to exit")
    finally:
        daemon.kill()
    assert "stopped early" in log.read_text()
    assert "Traceback" not in log.read_text()
    present = set(files(tree.data_processed))
    assert not any(Path(path).name.startswith(".") for path in present)
    assert not [p for p in tree.data_processed.images.iterdir() if p.name.startswith(".")]
    # Every annotation has all of its samples or none: nothing half-made is visible.
    made = [name for name in names if sample_files(name) <= present]
    assert 0 < len(made) < len(names)
    assert present == set().union(*(sample_files(name) for name in made))
    for label in tree.data_processed.labels.iterdir():
        read_label(label)
    # The next pass picks up exactly where the stopped one left off.
    assert main(["--once", "--root", str(tree.root), "--workers", "2"]) == 0
    assert set(files(tree.data_processed)) == set().union(*map(sample_files, names))


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_while_idle_exits_zero(
    tree: DataTree, annotations: list[str], tmp_path: Path, signum: signal.Signals
) -> None:
    log = tmp_path / "daemon.log"
    daemon = _daemon(tree.root, log, "--interval", "600")
    try:
        wait_for(lambda: "augment pass:" in log.read_text(), timeout=120, what="first pass")
        started = time.monotonic()
        daemon.send_signal(signum)
        assert daemon.wait(timeout=30) == 0, log.read_text()
        assert time.monotonic() - started < 5
    finally:
        daemon.kill()
    assert "augment daemon stopped" in log.read_text()


@pytest.mark.slow
def test_killed_daemon_leaves_no_workers_behind(tree: DataTree, tmp_path: Path) -> None:
    write_annotations(tree.data, 60, width=WIDTH, height=HEIGHT, seed=5)
    log = tmp_path / "daemon.log"
    daemon = _daemon(tree.root, log, "--interval", "600")
    try:
        wait_for(
            lambda: any(tree.data_processed.labels.iterdir()), timeout=120, what="first sample"
        )
        daemon.kill()  # SIGKILL: no chance to clean up
        daemon.wait(timeout=30)
        wait_for(lambda: _group_gone(daemon), timeout=30, what="orphaned workers to exit")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(daemon.pid, signal.SIGKILL)
    # A restart sweeps what the killed writes left and completes every annotation.
    assert main(["--once", "--root", str(tree.root), "--workers", "2"]) == 0
    assert not [p for p in tree.data_processed.images.iterdir() if p.name.startswith(".")]
    assert len(list(tree.data_processed.labels.iterdir())) == 60 * 8

"""The split ledger and formation's leftovers as state that cannot be guessed again: a damaged
or lost ledger is never reset silently, it is rebuilt from the manifests; `resplit` re-splits
for real; a killed formation's staging folder is removed by the next formation and by `prune`;
one formation per root."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from azaion_training.cli.dataset import main
from azaion_training.config import Settings
from azaion_training.dataset.formation import form_dataset
from azaion_training.dataset.ledger import LEDGER_FILE
from azaion_training.errors import BusyError, DatasetError
from azaion_training.fs import DataTree
from azaion_training.locks import hold
from tests import helpers
from tests.dataset.helpers import write_fake_samples

SOURCES = 200
DAY = dt.date(2026, 11, 26)


def with_ratios(settings: Settings, train: float, valid: float, test: float) -> Settings:
    dataset = settings.dataset.model_copy(
        update={"train_ratio": train, "valid_ratio": valid, "test_ratio": test}
    )
    return settings.model_copy(update={"dataset": dataset})


def lose_ledger(tree: DataTree) -> None:
    for path in tree.root.glob(f"{LEDGER_FILE}*"):
        path.unlink()


def test_a_lost_ledger_is_refused_then_rebuilt_from_the_manifests(
    settings: Settings, tree: DataTree, capsys: pytest.CaptureFixture[str]
) -> None:
    write_fake_samples(tree.data_processed, SOURCES)
    first = form_dataset(settings, tree, date=DAY, progress=False)
    lose_ledger(tree)
    changed = with_ratios(settings, 0.5, 0.3, 0.2)
    with pytest.raises(DatasetError, match=rf"{LEDGER_FILE} is missing or empty, but 1 data"):
        form_dataset(changed, tree, date=DAY, progress=False)
    assert main(["--root", str(tree.root), "rebuild-ledger"]) == 0
    assert f"{SOURCES} groups from the manifests" in capsys.readouterr().out
    second = form_dataset(changed, tree, date=DAY, progress=False)
    moved = [name for name, split in first.splits.items() if second.splits[name] != split]
    assert moved == []


def test_an_emptied_ledger_splits_afresh_only_when_the_operator_says_so(
    settings: Settings, tree: DataTree
) -> None:
    write_fake_samples(tree.data_processed, SOURCES)
    form_dataset(settings, tree, date=DAY, progress=False)
    (tree.root / LEDGER_FILE).write_bytes(b"")  # emptied: SQLite opens it as a new database
    for path in tree.root.glob(f"{LEDGER_FILE}-*"):
        path.unlink()
    with pytest.raises(DatasetError, match="rebuild-ledger --empty"):
        form_dataset(settings, tree, date=DAY, progress=False)
    assert main(["--root", str(tree.root), "rebuild-ledger", "--empty"]) == 0
    form_dataset(settings, tree, date=DAY, progress=False)


def test_resplit_really_resplits_and_says_how_many_groups_move(
    settings: Settings, tree: DataTree, capsys: pytest.CaptureFixture[str]
) -> None:
    write_fake_samples(tree.data_processed, SOURCES)
    first = form_dataset(settings, tree, date=DAY, progress=False)
    assert main(["--root", str(tree.root), "resplit"]) == 0
    said = capsys.readouterr().out
    second = form_dataset(settings, tree, date=DAY, progress=False)
    moved = sum(second.splits[name] != split for name, split in first.splits.items())
    assert moved > SOURCES // 5, "a re-split that moves (almost) nothing is no re-split"
    assert f"generation 2 started: {moved} of the {SOURCES} groups of generation 1 move" in said


def test_a_damaged_ledger_stops_with_the_file_and_the_remedy(
    settings: Settings, tree: DataTree, capsys: pytest.CaptureFixture[str]
) -> None:
    write_fake_samples(tree.data_processed, 20)
    ledger = tree.root / LEDGER_FILE
    ledger.write_bytes(b"not a ledger " * 500)
    with pytest.raises(DatasetError, match=rf"{ledger} is damaged .*rebuild-ledger"):
        form_dataset(settings, tree, date=DAY, progress=False)
    assert main(["--root", str(tree.root), "resplit"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(ledger) in err and "backup" in err
    assert ledger.read_bytes() == b"not a ledger " * 500


_FORM = """
import sys
from pathlib import Path
from azaion_training.config import load_settings
from azaion_training.dataset.formation import form_dataset
from azaion_training.fs import DataTree
root = sys.argv[1]
settings = load_settings(environ={"AZAION_ROOT_DIR": root}, env_file=None)
form_dataset(settings, DataTree(root=Path(root)), progress=False)
"""


def killed_formation(tree: DataTree) -> Path:
    """Starts a real formation, kills it (-9) once its staging folder exists; returns it."""
    process = subprocess.Popen(
        [sys.executable, "-c", _FORM, str(tree.root)], env=helpers.subprocess_env({})
    )
    deadline = time.monotonic() + 120
    staging: list[Path] = []
    while not staging and time.monotonic() < deadline and process.poll() is None:
        staging = [p for p in tree.datasets.glob(".azaion-*.partial") if any(p.rglob("*.txt"))]
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert staging and staging[0].exists(), "formation finished before it could be killed"
    return staging[0]


def test_a_killed_formations_staging_is_removed_by_the_next_and_by_prune(
    settings: Settings, tree: DataTree
) -> None:
    write_fake_samples(tree.data_processed, 2000)
    staging = killed_formation(tree)
    form_dataset(settings, tree, date=DAY, progress=False)
    assert not staging.exists()
    staging = killed_formation(tree)
    assert main(["--root", str(tree.root), "prune", "--keep", "5"]) == 0
    assert not staging.exists()
    assert [p.name for p in tree.datasets.iterdir() if p.name.startswith(".")] == []


def test_a_second_formation_exits_at_once_naming_the_first(
    settings: Settings, tree: DataTree
) -> None:
    write_fake_samples(tree.data_processed, 20)
    busy = rf"another dataset formation .*PID {os.getpid()}"
    with (
        hold(tree.lock_file("formation"), role="dataset formation"),
        pytest.raises(BusyError, match=busy),
    ):
        form_dataset(settings, tree, date=DAY, progress=False)
    form_dataset(settings, tree, date=DAY, progress=False)

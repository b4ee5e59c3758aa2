"""`azaion-dataset` through its entry point, on a real tree (catalogue, ledger, datasets)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from azaion_training.cli.dataset import main
from azaion_training.config import Settings
from azaion_training.dataset.formation import form_dataset
from azaion_training.fs import DataTree
from azaion_training.queue.catalogue import Catalogue
from tests.dataset.helpers import write_fake_samples
from tests.queue.helpers import created


def test_info_list_prune_and_resplit(
    settings: Settings, tree: DataTree, capsys: pytest.CaptureFixture[str]
) -> None:
    names = write_fake_samples(tree.data_processed, 20)
    with Catalogue.for_tree(tree) as catalogue:
        message = dataclasses.replace(created(names[0]), original_media_name="flight-9.mp4")
        catalogue.record(message, offset=41, missing=())
        catalogue.commit()
    first = form_dataset(settings, tree, date=dt.date(2026, 11, 26), progress=False)
    root = ["--root", str(tree.root)]

    assert main([*root, "info", names[0]]) == 0
    shown = capsys.readouterr().out
    assert "flight-9.mp4" in shown and "media:flight-9.mp4" in shown
    assert f"{first.splits[names[0]]} (ledger generation 1)" in shown
    assert "offset 41: status 10" in shown

    assert main([*root, "info"]) == 0
    assert "       1  flight-9.mp4" in capsys.readouterr().out

    assert main([*root, "resplit"]) == 0
    assert "generation 2 started" in capsys.readouterr().out
    second = form_dataset(settings, tree, date=dt.date(2026, 11, 27), progress=False)
    assert second.generation == 2 and second.new_groups == 20 and second.resplit
    assert "NEW split ledger generation 2" in second.summary() and not first.resplit

    assert main([*root, "list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listing] == [first.path.name, second.path.name]
    assert "gen 1" in listing[0] and "gen 2" in listing[1]

    assert main([*root, "prune", "--keep", "1"]) == 0
    assert "removed 1 dataset(s)" in capsys.readouterr().out
    assert not first.path.exists() and second.path.exists()

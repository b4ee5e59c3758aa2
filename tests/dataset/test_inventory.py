from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import yaml

from azaion_training.config import Settings
from azaion_training.dataset.formation import form_dataset
from azaion_training.dataset.inventory import list_datasets, prune_datasets
from azaion_training.fs import DataTree
from tests.dataset.helpers import write_fake_samples

DAY = dt.date(2026, 11, 26)


def fake_run(tree: DataTree, name: str, dataset: Path, *, installed: bool) -> Path:
    """A run folder as Ultralytics and the gate leave it: args.yaml and metrics.json."""
    run = tree.models / name
    run.mkdir(parents=True)
    (run / "args.yaml").write_text(yaml.safe_dump({"data": str(dataset / "data.yaml")}))
    (run / "metrics.json").write_text(json.dumps({"gate": {"install": installed}}))
    return run


def test_list_and_prune_keep_the_newest_and_every_dataset_a_model_came_from(
    settings: Settings, tree: DataTree
) -> None:
    write_fake_samples(tree.data_processed, 20)
    formed = [
        form_dataset(settings, tree, date=DAY + dt.timedelta(days=d), progress=False)
        for d in (0, 0, 1, 2)
    ]
    paths = [f.path for f in formed]
    assert [p.name for p in paths][:2] == ["azaion-2026-11-26", "azaion-2026-11-26.2"]
    installed = fake_run(tree, "azaion-2026-11-26", paths[0], installed=True)
    rejected = fake_run(tree, "azaion-2026-11-27", paths[2], installed=False)

    listed = list_datasets(tree)
    assert [info.path for info in listed] == paths
    assert listed[0].installed == (installed,) and listed[2].runs == (rejected,)
    assert listed[2].installed == ()
    assert listed[3].samples == {s: c.samples for s, c in formed[3].counts.items()}
    assert listed[0].generation == 1 and "(installed)" in listed[0].line()

    removed = prune_datasets(tree, keep=1)
    assert removed == [paths[1], paths[2]]
    assert [info.path for info in list_datasets(tree)] == [paths[0], paths[3]]
    assert not list(tree.datasets.glob(".*"))

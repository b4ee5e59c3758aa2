"""Ultralytics' own dataset checker accepts a formed dataset, offline, with zero corrupt labels."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from azaion_training._ultralytics import provide_plot_fonts
from azaion_training.config import Settings
from azaion_training.dataset.formation import SPLITS, form_dataset
from azaion_training.fs import DataTree
from tests.dataset.helpers import write_real_samples


@pytest.mark.slow
def test_check_det_dataset_and_yolo_dataset_accept_it(
    settings: Settings, tree: DataTree, tmp_path: Path, network_guard: list[str]
) -> None:
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    attempts_before = len(network_guard)  # the guard's list is session-wide
    write_real_samples(tree, 30)
    formed = form_dataset(settings, tree, date=dt.date(2026, 11, 26), progress=False)
    provide_plot_fonts()  # check_det_dataset looks for Arial.ttf and would download it
    data = check_det_dataset(str(formed.data_yaml))
    assert data["nc"] == 80 and len(data["names"]) == 80
    assert Path(data["val"]) == formed.path / "valid" / "images"
    for split in SPLITS:
        images = formed.path / split / "images"
        dataset = YOLODataset(img_path=str(images), data=data, task="detect", imgsz=96)
        found, missing, empty, corrupt, total = dataset.cache_labels(tmp_path / f"{split}.cache")[
            "results"
        ]
        assert (corrupt, missing, total) == (0, 0, formed.counts[split].samples)
        assert found + empty == total
        assert len(dataset.labels) == total
    assert network_guard[attempts_before:] == []

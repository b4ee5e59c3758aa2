from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from azaion_training.classes import WeatherMode
from azaion_training.config import ENVIRONMENT
from azaion_training.demo.world import write_annotations
from azaion_training.fs import DataTree
from azaion_training.train import gate
from azaion_training.train.evaluate import ClassMetrics, SplitMetrics
from azaion_training.train.gate import decide, store_metadata, write_metrics
from tests.infer.conftest import CLASSES, MODEL_IMGSZ, Detector


@pytest.mark.parametrize(
    ("candidate", "current", "force", "install", "forced", "words"),
    [
        (0.40, None, False, True, False, "no current model"),
        (0.50, 0.40, False, True, False, "not worse, installed"),
        (0.396, 0.40, False, True, False, "not worse, installed"),  # within the tolerance
        (0.39, 0.40, False, False, False, "worse, current model kept"),
        (0.10, 0.40, True, True, True, "installed because --force"),
        (0.50, 0.40, True, True, False, "not worse, installed"),  # --force not needed
    ],
)
def test_decide(candidate, current, force, install, forced, words) -> None:
    decision = decide(
        split="test", candidate=candidate, current=current, tolerance=0.005, force=force
    )
    assert (decision.install, decision.forced) == (install, forced)
    assert words in decision.reason and f"{candidate:.4f}" in decision.reason


def test_metrics_json_and_store_metadata_carry_both_scores_and_the_dataset(
    tmp_path: Path,
) -> None:
    def scores(value: float) -> SplitMetrics:
        row = ClassMetrics(class_id=1, name="Truck", instances=3, map50=value, map50_95=value)
        return SplitMetrics("test", value, value, (row,), tmp_path)

    decision = decide(split="test", candidate=0.2, current=0.3, tolerance=0.005, force=False)
    dataset = {"dataset": "/d/azaion-2026-11-26", "manifest_sha256": "ab", "ledger_generation": 1}
    path = write_metrics(
        tmp_path,
        decision=decision,
        candidate={"test": scores(0.2)},
        current=scores(0.3),
        dataset=dataset,
    )
    record = json.loads(path.read_text())
    assert record["gate"]["install"] is False
    assert record["candidate"]["test"]["map50_95"] == 0.2 and record["current"]["map50_95"] == 0.3
    assert record["candidate"]["test"]["classes"][0]["name"] == "Truck"
    assert record["dataset"] == dataset
    metadata = store_metadata(decision, dataset)
    assert metadata == {
        "map50_95": 0.2,
        "previous_map50_95": 0.3,
        "scored_on": "test",
        "forced": False,
        "dataset": "azaion-2026-11-26",
        "manifest_sha256": "ab",
    }


@pytest.mark.slow
def test_a_worse_candidate_leaves_the_better_current_model_in_place(
    tmp_path: Path,
    detector: Detector,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The current model is the inference tests' trained detector; a 1-epoch candidate from
    scratch on the same kind of scenes must not replace it, and the job still exits 0."""
    from azaion_training.cli.train import main

    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    tree = DataTree(root=tmp_path / "azaion").create()
    write_annotations(
        tree.data_processed,
        40,
        seed=7,
        width=160,
        height=120,
        classes=CLASSES,
        mode=WeatherMode.NORM,
        objects=(2, 4),
        hard=False,
    )
    shutil.copyfile(detector.weights, tree.current_model_pt)
    config = tmp_path / "config.yaml"
    training = {"model": "yolo11n.yaml", "epochs": 1, "batch": 16, "imgsz": MODEL_IMGSZ}
    config.write_text(
        yaml.safe_dump(
            {
                "root_dir": str(tree.root),
                "training": {**training, "device": "cpu", "workers": 0},
                "export": {"imgsz": MODEL_IMGSZ, "batch": 4},
            }
        )
    )
    assert main(["--config", str(config), "--no-progress", "--no-publish"]) == 0
    record = json.loads((tree.latest_run() / gate.METRICS_FILE).read_text())
    decision = record["gate"]
    assert decision["current"] > decision["candidate"] + decision["tolerance"]  # truly worse
    assert decision["install"] is False and decision["forced"] is False
    assert tree.current_model_pt.read_bytes() == detector.weights.read_bytes()
    assert not tree.current_model_onnx.exists()  # nothing exported or published
    assert decision["reason"] in capsys.readouterr().out

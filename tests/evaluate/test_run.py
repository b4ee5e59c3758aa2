"""The evaluator on the trained test detector: the deployed path, its scores and their JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from azaion_training.cli.evaluate import main
from azaion_training.evaluate.run import evaluate_model
from azaion_training.evaluate.scores import Scores
from azaion_training.evaluate.split import read_split, split_images
from azaion_training.infer.frames import detect_frames


def test_detections_above_conf_are_those_azaion_infer_keeps(onnx_engine, split_160: Path) -> None:
    evaluation = evaluate_model(
        onnx_engine, split_160, conf=0.3, iou=0.3, model="detector.onnx", progress=False
    )
    frames = (sample.image for sample in read_split(split_images(split_160)))
    deployed = list(detect_frames(onnx_engine, frames, conf=0.3, iou=0.3))
    assert len(deployed) == len(evaluation.frames) == 12
    more = 0
    for frame, kept in zip(evaluation.frames, deployed, strict=True):
        low = frame.detections
        above = low.confidence > 0.3
        more += int((~above).sum())
        order = np.argsort(-kept.confidence, kind="stable")
        mine = np.argsort(-low.confidence[above], kind="stable")
        np.testing.assert_array_equal(low.class_id[above][mine], kept.class_id[order])
        np.testing.assert_allclose(low.xyxy[above][mine], kept.xyxy[order], atol=1e-4)
    assert more > 0  # the low threshold did add detections


def test_scores_of_the_detector_at_its_training_size(onnx_engine, split_160: Path) -> None:
    scores = evaluate_model(
        onnx_engine, split_160, conf=0.3, iou=0.3, model="detector.onnx", progress=False
    ).scores
    assert scores.images == 12 and scores.truths > 20
    building = next(c for c in scores.classes if c.name == "Building")
    assert building.map50 is not None and building.map50 > 0.8 and building.recall == 1.0
    # The short-trained detector calls most ArmorVehicles Buildings (its .pt does the same).
    assert scores.map50 is not None and scores.map50 >= 0.4
    assert scores.map50_95 is not None and 0 < scores.map50_95 < scores.map50
    assert {c.name for c in scores.classes} >= {"ArmorVehicle", "Building"}
    assert sum(r.truths for r in scores.sizes[:5]) >= scores.truths  # ends shared
    confusion = scores.confusion
    assert confusion.names == tuple(c.name for c in scores.classes)
    by_class = {c.class_id: c.truths for c in scores.classes}
    for class_id, row in zip(confusion.class_ids, confusion.counts, strict=False):
        assert sum(row) == by_class[class_id]  # every object once: found, confused or missed
    assert Scores.from_dict(json.loads(json.dumps(scores.to_dict()))) == scores


def test_azaion_evaluate_prints_the_table_and_writes_json(
    detector, split_160: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "scores.json"
    argv = [str(detector.onnx), "--split", str(split_160), "--out", str(out), "--no-progress"]
    assert main([*argv, "--root", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "mAP50-95" in printed and "very tiny (2-8 px)" in printed and "ArmorVehicle" in printed
    scores = Scores.from_dict(json.loads(out.read_text()))
    assert scores.settings.conf == 0.3 and scores.settings.engine == "onnx"
    assert scores.settings.imgsz == (128, 128)


def test_azaion_evaluate_exit_codes(detector, tmp_path: Path) -> None:
    assert main([str(detector.onnx), "--split", str(tmp_path), "--root", str(tmp_path)]) == 1
    assert main([str(tmp_path / "missing.onnx"), "--split", str(tmp_path)]) == 1
    with pytest.raises(SystemExit) as usage:
        main([str(detector.onnx), "--conf", "high"])
    assert usage.value.code == 2


def test_azaion_evaluate_says_what_is_wrong_in_one_line(
    detector, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--root", str(tmp_path), "--no-progress"]
    assert main([str(detector.onnx), *argv, "--split", str(tmp_path / "nowhere")]) == 1
    assert "nowhere: no such folder" in capsys.readouterr().err
    split = tmp_path / "split"
    (split / "images").mkdir(parents=True)
    assert main(["mistyped.onnx", *argv, "--split", str(split)]) == 1
    error = capsys.readouterr().err.strip()
    assert "mistyped.onnx is no file here, and no model named mistyped.onnx" in error
    assert len(error.splitlines()) == 1
    assert main([str(detector.onnx), *argv, "--split", str(split), "--tiles", "3x"]) == 2


def test_tiles_pass_through_and_deployed_scores_are_azaion_infers(
    onnx_engine, tmp_path: Path
) -> None:
    from azaion_training.infer.tiles import TilePlan
    from tests.evaluate.conftest import write_split

    split = write_split(tmp_path / "test", 6, width=320, height=240, seed=4)
    plan = TilePlan.parse("160x120", overlap=0.25)
    whole = evaluate_model(onnx_engine, split, conf=0.3, iou=0.3, model="d", progress=False)
    tiled = evaluate_model(
        onnx_engine, split, conf=0.3, iou=0.3, model="d", tiles=plan, progress=False
    )
    assert tiled.scores.settings.tiles == "160x120"
    assert tiled.scores.settings.tile_options["overlap"] == 0.25
    frames = (sample.image for sample in read_split(split_images(split)))
    deployed = detect_frames(onnx_engine, frames, conf=0.3, iou=0.3, tiles=plan)
    for frame, kept in zip(tiled.frames, deployed, strict=True):
        np.testing.assert_array_equal(frame.deployed.xyxy, kept.xyxy)
    assert whole.scores.settings.tiles == "off"
    boxes = [
        (t.detections.xyxy, w.detections.xyxy)
        for t, w in zip(tiled.frames, whole.frames, strict=True)
    ]
    assert any(  # the tiles were run, not the whole frames: other boxes (not just other counts)
        a.shape != b.shape or not np.allclose(a, b, atol=0.5) for a, b in boxes
    )

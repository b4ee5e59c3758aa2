from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from azaion_training.cli.infer import main
from azaion_training.config import load_settings
from azaion_training.fs import DataTree
from azaion_training.store.models import publish_file

from .test_engine import tiny_onnx


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with no config.yaml or .env, and a data root inside it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "root").mkdir()
    return tmp_path


def test_a_run_writes_the_outputs_and_a_summary_line(
    workdir: Path, detector, video_100: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            str(video_100),
            "--model",
            str(detector.onnx),
            "--out",
            "out",
            "--root",
            "root",
            "--no-progress",
        ]
    )
    assert code == 0
    summary = json.loads((workdir / "out" / "summary.json").read_text())
    assert (summary["frames_read"], summary["frames_inferred"]) == (100, 25)
    assert "100 frames read, 25 inferred" in capsys.readouterr().out


def test_show_without_a_display_is_ignored_with_a_warning(
    workdir: Path,
    detector,
    video_100: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    args = ["--model", str(detector.onnx), "--root", "root", "--out", "out", "--no-progress"]
    assert main([str(video_100), *args, "--show"]) == 0
    assert "no display" in capsys.readouterr().err


def test_settings_flags_reach_the_run(workdir: Path, detector, video_100: Path) -> None:
    args = ["--model", str(detector.onnx), "--root", "root", "--no-progress", "--every", "10"]
    assert main([str(video_100), *args, "--conf", "0.5", "--iou", "0.4"]) == 0
    summary = json.loads((workdir / f"{video_100.stem}-detections" / "summary.json").read_text())
    assert (summary["every"], summary["frames_inferred"]) == (10, 10)
    assert (summary["conf"], summary["iou"]) == (0.5, 0.4)


@pytest.mark.parametrize(
    ("flags", "tiles", "tile_size", "pieces"),
    [
        ([], "auto", "128x128", 10),  # 320x240 > 1.5 x 128: 3 x 3 tiles and the whole frame
        (["--tiles", "off"], "off", "whole", 1),
        (["--tiles", "200x200", "--tile-overlap", "0.5"], "200x200", "200x200", 7),
        (["--tile-factor", "3"], "auto", "whole", 1),  # 320 / 128 = 2.5 <= 3: not tiled
    ],
)
def test_the_tiling_flags_reach_the_run_and_its_summary(
    workdir: Path, detector, video_100: Path, flags, tiles, tile_size, pieces
) -> None:
    args = ["--model", str(detector.onnx), "--root", "root", "--no-progress", "--every", "25"]
    assert main([str(video_100), *args, "--out", "out", *flags]) == 0
    summary = json.loads((workdir / "out" / "summary.json").read_text())
    assert (summary["tiles"], summary["tile_size"]) == (tiles, tile_size)
    assert summary["pieces_per_frame"] == pieces
    assert summary["engine_calls"] == -(-4 * pieces // 4)  # 4 frames: every call full but one


def test_a_bad_tiles_value_is_a_usage_error(workdir: Path, detector, video_100: Path) -> None:
    args = ["--model", str(detector.onnx), "--root", "root", "--no-progress"]
    assert main([str(video_100), *args, "--tiles", "big"]) == 2


def test_the_current_model_is_used_without_a_model_option(
    workdir: Path, detector, video_100: Path
) -> None:
    (workdir / "root" / "models").mkdir()
    shutil.copyfile(detector.onnx, workdir / "root" / "models" / "azaion.onnx")
    assert main([str(video_100), "--root", "root", "--out", "out", "--no-progress"]) == 0
    assert (workdir / "out" / "detections.jsonl").is_file()


def _wrong_output_model(workdir: Path) -> str:
    path = workdir / "raw-head.onnx"
    path.write_bytes(tiny_onnx([4, 84, 8400]))
    return str(path)


def _model_with_unknown_suffix(workdir: Path) -> str:
    path = workdir / "azaion.pt"
    path.write_bytes(b"weights")
    return str(path)


def _corrupt_video(workdir: Path) -> str:
    path = workdir / "corrupt.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    return str(path)


@pytest.mark.parametrize(
    ("video", "model", "message"),
    [
        # missing video
        (lambda w: "missing.mp4", None, "video missing.mp4 does not exist"),
        # corrupt video
        (_corrupt_video, None, "not a video OpenCV can decode"),
        # a model without NMS inside: output [4, 84, 8400]
        (None, _wrong_output_model, r"model output is \[4, 84, 8400\], expected \[B, 300, 6\]"),
        # a model file of an unknown type
        (None, _model_with_unknown_suffix, "unknown model type '.pt'"),
        # no model option and no current model
        (None, lambda w: None, "azaion.onnx does not exist"),
    ],
)
def test_errors_are_one_line_and_exit_1(
    workdir: Path,
    detector,
    video_100: Path,
    capsys: pytest.CaptureFixture[str],
    video,
    model,
    message: str,
) -> None:
    video_arg = video(workdir) if video else str(video_100)
    model_arg = model(workdir) if model else str(detector.onnx)
    args = [video_arg, "--root", "root", "--out", "out", "--no-progress"]
    if model_arg is not None:
        args += ["--model", model_arg]
    assert main(args) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("azaion-infer: error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert re.search(message, errors[0]), errors[0]
    assert not (workdir / "out").exists() or list((workdir / "out").iterdir()) == []


def test_from_store_runs_the_model_decrypted_in_memory(
    workdir: Path, detector, video_100: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = DataTree(root=workdir / "root").create()
    settings = load_settings(environ={"AZAION_ROOT_DIR": str(tree.root)}, env_file=None)
    publish_file(settings, tree, detector.onnx, "azaion.onnx")
    args = [str(video_100), "--from-store", "azaion.onnx", "--root", str(tree.root)]
    assert main([*args, "--out", "out", "--no-progress"]) == 0
    summary = json.loads((workdir / "out" / "summary.json").read_text())
    assert summary["frames_inferred"] == 25
    plaintext = detector.onnx.read_bytes()
    on_disk = [p for p in tree.root.rglob("*") if p.is_file() and p.read_bytes() == plaintext]
    assert on_disk == []  # the decrypted model never touched the data root


def test_from_store_with_an_unknown_name_is_one_clear_error(
    workdir: Path, video_100: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main([str(video_100), "--from-store", "nope.onnx", "--root", "root", "--no-progress"]) == 1
    )
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "nope.onnx" in errors[0]


def test_an_invalid_setting_on_the_command_line_is_a_usage_error(
    workdir: Path, detector, video_100: Path
) -> None:
    assert (
        main([str(video_100), "--model", str(detector.onnx), "--root", "root", "--every", "0"]) == 2
    )


def test_model_and_store_together_are_a_usage_error(workdir: Path, video_100: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([str(video_100), "--model", "a.onnx", "--from-store", "azaion"])
    assert exit_info.value.code == 2


def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for option in (
        "--model",
        "--from-store",
        "--out",
        "--every",
        "--batch",
        "--conf",
        "--iou",
        "--show",
    ):
        assert option in text
    assert "INFER_EVERY" in text

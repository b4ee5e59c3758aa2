"""`azaion-infer` says a video is missing or broken before it loads any model."""

from __future__ import annotations

from pathlib import Path

import pytest

from azaion_training.cli.infer import main


@pytest.mark.parametrize("content", [None, b"not a video"])
def test_the_video_is_checked_before_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None
) -> None:
    video = tmp_path / "clip.mp4"
    if content is not None:
        video.write_bytes(content)
    model = tmp_path / "absent.onnx"  # loading it would fail with "does not exist"
    code = main([str(video), "--model", str(model), "--root", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert str(video) in err and "absent.onnx" not in err

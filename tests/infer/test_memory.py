"""Memory stays flat: the queues are bounded and nothing grows with the length of the video."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from azaion_training.demo.world import write_video

from .conftest import CLASSES, Detector

MARGIN_BYTES = 8 * 1024 * 1024
"""RSS may differ by this much between frame 200 and frame 2,000 (allocator noise). Keeping the
450 sampled 160x120 frames after frame 200 alone would take 25 MiB."""

_MEASURE = """
import json, sys
from pathlib import Path
import psutil
from azaion_training.config import InferSettings
from azaion_training.infer.onnx import OnnxEngine
from azaion_training.infer.runner import infer_video

model, video, out = (Path(arg) for arg in sys.argv[1:4])
process = psutil.Process()
rss = {}

def sample(result):
    index = result.frame.index
    if index >= 200 and "at_200" not in rss:
        rss["at_200"] = process.memory_info().rss
    rss["at_end"] = process.memory_info().rss
    rss["last_frame"] = index

summary = infer_video(
    video, OnnxEngine(model), out, settings=InferSettings(every=4, batch=4), progress=False,
    on_result=sample,
)
rss["frames_read"] = summary.frames_read
print(json.dumps(rss))
"""


@pytest.mark.slow
def test_rss_after_2000_frames_is_within_a_margin_of_rss_after_200(
    tmp_path: Path, detector: Detector
) -> None:
    video = tmp_path / "long.mp4"
    write_video(video, frames=2000, width=160, height=120, classes=CLASSES)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(detector.onnx), str(video), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rss = json.loads(result.stdout.strip().splitlines()[-1])
    assert (rss["frames_read"], rss["last_frame"]) == (2000, 1996)
    growth = rss["at_end"] - rss["at_200"]
    at_200, at_end = rss["at_200"] / 2**20, rss["at_end"] / 2**20
    print(f"RSS at frame 200: {at_200:.1f} MiB, at frame 2000: {at_end:.1f} MiB")
    assert growth < MARGIN_BYTES, f"RSS grew by {growth / 2**20:.1f} MiB over 1,800 frames"

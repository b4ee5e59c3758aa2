"""Video inference speed: our pipeline against the bare engine and against Ultralytics' predictor.

One run, one synthetic 1280x720 video, one ONNX model (the test detector, exported at ``--imgsz``
with batch 4), on ONNX Runtime as it comes (CUDA if present, else CPU):

    (a) bare engine   ``engine.run`` over batches that are already decoded and letterboxed
    (b) ours          ``infer_video`` end to end: decode, letterbox, engine, overlap removal,
                      detections.jsonl, annotated.mp4 (threads overlapping)
    (c) Ultralytics   ``YOLO(onnx).predict(video, stream=True, vid_stride=every, batch=4)``,
                      once writing nothing and once with ``save=True`` (its annotated video,
                      the like-for-like comparison with (b))

All three are reported in frames of the video per second (for (a): inferred frames/s x every),
so b/a says how close the pipeline comes to the engine's own speed (goal >= 0.9) and b/c how it
compares with Ultralytics (goal >= 1.5). The three run interleaved ``--repeat`` times and the
median of each counts, which evens out load from other processes on a shared machine. The model
is trained once (about 1.5 minutes on two cores) and kept in the tests' pytest cache.
``--json PATH`` writes the medians for ``run_all.py``.

    PYTHONPATH=src:. python benchmarks/bench_infer.py [--frames 400] [--imgsz 640] [--every 4]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_VERBOSE", "false")

import cv2

from azaion_training.config import InferSettings
from azaion_training.demo.world import write_video
from azaion_training.export.onnx import export_onnx
from azaion_training.infer.engine import Engine
from azaion_training.infer.load import load_engine
from azaion_training.infer.preprocess import Letterbox, to_input
from azaion_training.infer.runner import infer_video

BUILDS = Path(__file__).resolve().parent.parent / ".pytest_cache" / "d" / "builds"


def detector_weights() -> Path:
    """The tests' trained detector checkpoint, built into a pytest cache (`tests.builds`) when
    missing."""
    from tests.builds import built
    from tests.infer.conftest import DETECTOR

    BUILDS.mkdir(parents=True, exist_ok=True)
    return built(BUILDS, DETECTOR) / "detector.pt"


def bare_engine_fps(engine: Engine, video: Path, *, every: int) -> float:
    """Video frames/s the engine alone sustains: inferred frames/s times ``every``."""
    capture = cv2.VideoCapture(str(video))
    frames, index = [], 0
    while capture.grab():
        if index % every == 0:
            frames.append(capture.retrieve()[1])
        index += 1
    capture.release()
    height, width = frames[0].shape[:2]
    letterbox = Letterbox.fit(source_hw=(height, width), target_hw=engine.input_size)
    batch = engine.batch_size or 4
    images = [letterbox.apply(frame) for frame in frames]
    batches = [
        to_input(images[i : i + batch], batch_size=engine.batch_size)
        for i in range(0, len(images), batch)
    ]
    engine.run(batches[0])  # warm-up
    started = time.perf_counter()
    for inputs in batches:
        engine.run(inputs)
    return len(frames) * every / (time.perf_counter() - started)


def ours_fps(engine: Engine, video: Path, *, every: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        summary = infer_video(
            video,
            engine,
            Path(out),
            settings=InferSettings(every=every, tiles="off"),
            progress=False,
        )
    return summary.fps


def ultralytics_fps(
    model_path: Path, video: Path, *, every: int, imgsz: int, frames: int, save: bool
) -> float:
    """Video frames/s of Ultralytics' predictor; ``save`` also writes its annotated video."""
    from ultralytics import YOLO

    model = YOLO(str(model_path), task="detect")
    capture = cv2.VideoCapture(str(video))
    first = capture.read()[1]
    capture.release()
    model.predict([first] * 4, imgsz=imgsz, conf=0.3, verbose=False)  # load and warm up
    started = time.perf_counter()
    for _ in model.predict(
        source=str(video),
        stream=True,
        vid_stride=every,
        batch=4,
        imgsz=imgsz,
        conf=0.3,
        verbose=False,
    ):
        pass
    return frames / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=400, help="video length (default 400)")
    parser.add_argument("--imgsz", type=int, default=640, help="model input size (default 640)")
    parser.add_argument("--every", type=int, default=4, help="infer every N-th frame (default 4)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="interleaved rounds; the median of each counts"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the medians here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        video = work / "bench-1280x720.mp4"
        write_video(
            video, frames=args.frames, width=1280, height=720, seed=1, classes=(0, 15), hard=False
        )
        model = export_onnx(detector_weights(), work / "bench.onnx", imgsz=args.imgsz, batch=4)
        engine = load_engine(model)
        print(
            f"video 1280x720, {args.frames} frames, every {args.every}; model imgsz {args.imgsz}, "
            f"batch 4; engine {engine.name}; {os.cpu_count()} CPUs"
        )
        rounds: dict[str, list[float]] = {"bare": [], "ours": [], "ultralytics": [], "save": []}
        common = {"every": args.every, "imgsz": args.imgsz, "frames": args.frames}
        for _ in range(args.repeat):  # interleaved, so that load from elsewhere hits all of them
            rounds["bare"].append(bare_engine_fps(engine, video, every=args.every))
            rounds["ours"].append(ours_fps(engine, video, every=args.every))
            rounds["ultralytics"].append(ultralytics_fps(model, video, save=False, **common))
            rounds["save"].append(ultralytics_fps(model, video, save=True, **common))
        engine.close()
    medians = {name: statistics.median(values) for name, values in rounds.items()}
    a, b, c, c_save = (medians[name] for name in ("bare", "ours", "ultralytics", "save"))
    print(f"medians of {args.repeat} rounds")
    print(f"(a) bare engine                {a:8.1f} video frames/s")
    print(f"(b) ours end to end            {b:8.1f} video frames/s")
    print(f"(c) Ultralytics predictor      {c:8.1f} video frames/s")
    print(
        f"    Ultralytics, save=True     {c_save:8.1f} video frames/s (writes a video, as (b) does)"
    )
    print(f"b/a = {b / a:.2f}   (goal >= 0.9)")
    print(f"b/c = {b / c:.2f}   (goal >= 1.5); against save=True: {b / c_save:.2f}")
    if args.json:
        args.json.write_text(json.dumps(medians))


if __name__ == "__main__":
    main()

"""Small targets in large frames: whole-frame vs tiled training and inference, same budget.

One synthetic world (the plain world of `demo.world`, frames ``--width`` x ``--height`` with
objects of 6-30 px at native resolution, several times the model input ``--imgsz``) and one
training budget: both models see the same number of optimizer steps x batch x imgsz^2.

    (a) whole  trained on whole frames (Ultralytics letterboxes them into imgsz), inferred whole
    (b) whole model, tiled inference (SAHI's "sliced inference" alone)
    (c) tiled  trained on the frames and their tiles (`dataset.tiles.TrainTiles`, what formation
               writes), inferred tiled (`infer.tiles.TilePlan`, auto)

Each is scored by the evaluator (`evaluate.run.evaluate_model`, the deployed path) on the full
test frames: mAP50, mAP50-95 and AP50 per size bucket (AI-TOD), and on a video of the same scale
(recall and precision against its true boxes). Goal (SPEC 13): (c) >= 2x (a) in AP50 under 16 px
and no worse above 32 px. Also timed: the tiled path (`detect_frames` with tiles: cutting,
packing, merging) against the bare engine on the same preloaded tile batches (goal >= 0.9).

    PYTHONPATH=src:. python benchmarks/bench_tiling.py --quick   # a few minutes on 2 cores
    PYTHONPATH=src:. python benchmarks/bench_tiling.py           # larger world, longer budget
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from azaion_training.classes import ClassTable, WeatherMode
from azaion_training.dataset.tiles import TrainTiles
from azaion_training.demo.scoring import video_scores
from azaion_training.demo.world import write_annotations, write_video
from azaion_training.evaluate.run import evaluate_model
from azaion_training.fs import AnnotationDir
from azaion_training.infer.frames import Packer, detect_frames
from azaion_training.infer.onnx import OnnxEngine
from azaion_training.infer.tiles import OFF, TilePlan
from azaion_training.infer.video import VideoDetection

CLASSES = (0, 15)
OBJECT_SIDE = (40, 180)  # objects drawn as in images of this shorter side: 6-30 px armour
BATCH = 8


@dataclass(frozen=True)
class Size:
    width: int
    height: int
    imgsz: int
    train: int
    test: int
    tiled_epochs: int
    """Epochs of the tiled run; the whole-frame run gets as many optimizer steps."""
    video_frames: int


SIZES = {
    "quick": Size(256, 192, 64, train=40, test=12, tiled_epochs=5, video_frames=40),
    "full": Size(512, 384, 128, train=160, test=40, tiled_epochs=8, video_frames=120),
}


def world(folder: AnnotationDir, count: int, *, seed: int, width: int, height: int) -> None:
    write_annotations(
        folder,
        count,
        seed=seed,
        width=width,
        height=height,
        prefix=f"w{seed}",
        classes=CLASSES,
        mode=WeatherMode.NORM,
        objects=(8, 14),
        hard=False,
        object_side=OBJECT_SIDE,
    )


def add_tiles(folder: AnnotationDir, tiles: TrainTiles) -> int:
    written = 0
    for image in sorted(folder.images.glob("*.jpg")):
        label = folder.labels / f"{image.stem}.txt"
        written += len(tiles.write(image, label, folder.images, folder.labels))
    return written


def train(data: Path, out: Path, *, epochs: int, imgsz: int) -> tuple[Path, int]:
    """Trains yolo11n; returns the weights and the optimizer steps taken."""
    from ultralytics import YOLO

    images = len(list((data / "images").glob("*.jpg")))
    config = out / "data.yaml"
    names = ClassTable.default().names
    config.write_text(
        yaml.safe_dump(
            {
                "path": str(data),
                "train": "images",
                "val": "images",
                "nc": len(names),
                "names": names,
            }
        )
    )
    YOLO("yolo11n.yaml").train(
        data=str(config),
        epochs=epochs,
        imgsz=imgsz,
        batch=BATCH,
        workers=0,
        device="cpu",
        project=str(out),
        name="run",
        exist_ok=True,
        plots=False,
        amp=False,
        val=False,
        verbose=False,
        seed=0,
        deterministic=True,
        optimizer="AdamW",
        lr0=0.003,
        warmup_epochs=0,
        mosaic=0.0,
        scale=0.2,
        translate=0.05,
        hsv_h=0.0,
    )
    return out / "run" / "weights" / "last.pt", epochs * math.ceil(images / BATCH)


def video_recall(onnx: Path, video: Path, truths, plan: TilePlan, size: tuple[int, int]):  # type: ignore[no-untyped-def]
    engine = OnnxEngine(onnx)
    found = []
    with VideoDetection(video, engine, every=2, batch=4, conf=0.3, iou=0.3, tiles=plan) as run:
        for result in run:
            d = result.detections
            found.append((result.frame.index, d.xyxy, d.class_id))
    engine.close()
    return video_scores(found, truths, width=size[0], height=size[1])


def throughput(onnx: Path, frames: list[np.ndarray], plan: TilePlan, *, rounds: int) -> dict:
    """Frames/s of the tiled path vs the bare engine on the same preloaded tile batches."""
    engine = OnnxEngine(onnx)
    packer: Packer[int] = Packer(engine, plan, 4)
    batches = [b.input for i, f in enumerate(frames) for b in packer.add(i, f)]
    batches += [b.input for b in packer.flush()]
    bare, ours = [], []
    for _ in detect_frames(engine, frames, conf=0.3, iou=0.3, tiles=plan):
        pass  # warm-up
    for _ in range(rounds):  # interleaved; the median of each counts
        started = time.perf_counter()
        for batch in batches:
            engine.run(batch)
        bare.append(len(frames) / (time.perf_counter() - started))
        started = time.perf_counter()
        for _ in detect_frames(engine, frames, conf=0.3, iou=0.3, tiles=plan):
            pass
        ours.append(len(frames) / (time.perf_counter() - started))
    engine.close()
    return {
        "bare": statistics.median(bare),
        "ours": statistics.median(ours),
        "pieces": sum(len(b) for b in batches),
    }


def bucket_ap50(scores, key: str) -> float | None:  # type: ignore[no-untyped-def]
    return next((s.map50 for s in scores.sizes if s.key == key), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller world and budget")
    parser.add_argument("--width", type=int, help="frame width (quick 256, full 512)")
    parser.add_argument("--height", type=int, help="frame height (quick 192, full 384)")
    parser.add_argument("--imgsz", type=int, help="model input (quick 64, full 128)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("YOLO_VERBOSE", "False")  # read when Ultralytics is first imported
    size = SIZES["quick" if args.quick else "full"]
    args.width, args.height = args.width or size.width, args.height or size.height
    args.imgsz = args.imgsz or size.imgsz
    frame_wh = (args.width, args.height)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-tiling-") as scratch:
        work = Path(scratch)
        whole, tiled, test = (AnnotationDir(work / n) for n in ("whole", "tiled", "test"))
        for folder in (whole, tiled, test):
            folder.create()
        world(whole, size.train, seed=1, width=args.width, height=args.height)
        world(tiled, size.train, seed=1, width=args.width, height=args.height)
        world(test, size.test, seed=2, width=args.width, height=args.height)
        tiles = TrainTiles(tile_hw=(args.imgsz, args.imgsz))
        written = add_tiles(tiled, tiles)
        tiled_images = size.train + written
        steps_tiled = size.tiled_epochs * math.ceil(tiled_images / BATCH)
        whole_epochs = max(round(steps_tiled / math.ceil(size.train / BATCH)), 1)
        print(
            f"world: {size.train} train frames {args.width}x{args.height} (+{written} tiles "
            f"of {args.imgsz}), {size.test} test frames; model input {args.imgsz}",
            flush=True,
        )

        from azaion_training.export.onnx import export_onnx

        models = {}
        for name, folder, epochs in (
            ("whole", whole, whole_epochs),
            ("tiled", tiled, size.tiled_epochs),
        ):
            out = work / f"train-{name}"
            out.mkdir()
            t0 = time.perf_counter()
            weights, steps = train(folder.path, out, epochs=epochs, imgsz=args.imgsz)
            models[name] = (
                export_onnx(weights, out / "model.onnx", imgsz=args.imgsz, batch=4),
                steps,
            )
            print(
                f"trained {name}: {epochs} epochs, {steps} steps of {BATCH} at {args.imgsz} px "
                f"in {time.perf_counter() - t0:.0f} s",
                flush=True,
            )

        video = work / "video.mp4"
        truths = write_video(
            video,
            frames=size.video_frames,
            width=args.width,
            height=args.height,
            seed=3,
            classes=CLASSES,
            hard=False,
            objects=(16, 28),
            object_side=OBJECT_SIDE,
        )
        plan = TilePlan(mode="auto")
        runs = {
            "whole": ("whole", OFF),
            "whole model, tiled inference": ("whole", plan),
            "tiled": ("tiled", plan),
        }
        results = {}
        for label, (model, tiling) in runs.items():
            engine = OnnxEngine(models[model][0])
            scores = evaluate_model(
                engine, test.path, conf=0.3, iou=0.3, model=model, tiles=tiling, progress=False
            ).scores
            engine.close()
            recall, precision = video_recall(models[model][0], video, truths, tiling, frame_wh)
            results[label] = {
                "steps": models[model][1],
                "map50": scores.map50,
                "map50_95": scores.map50_95,
                "ap50_by_size": {s.key: s.map50 for s in scores.sizes},
                "truths_by_size": {s.key: s.truths for s in scores.sizes},
                "video_recall": recall,
                "video_precision": precision,
            }
        test_frames = [cv2.imread(str(p)) for p in sorted(test.images.glob("*.jpg"))]
        speed = throughput(models["tiled"][0], test_frames, plan, rounds=5)

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    keys = ["very_tiny", "tiny", "small", "medium"]
    print(
        f"\n{'':32} {'steps':>6} {'mAP50':>6} {'50-95':>6} "
        + " ".join(f"{k:>9}" for k in keys)
        + f" {'v.recall':>8} {'v.prec':>7}"
    )
    counts = results["tiled"]["truths_by_size"]
    print(
        f"{'(test objects per bucket)':32} {'':>6} {'':>6} {'':>6} "
        + " ".join(f"{counts.get(k, 0):>9}" for k in keys)
    )
    for label, r in results.items():
        print(
            f"{label:32} {r['steps']:>6} {fmt(r['map50']):>6} {fmt(r['map50_95']):>6} "
            + " ".join(f"{fmt(r['ap50_by_size'].get(k)):>9}" for k in keys)
            + f" {fmt(r['video_recall']):>8} {fmt(r['video_precision']):>7}"
        )
    small = {
        k: _ratio(results["tiled"]["ap50_by_size"].get(k), results["whole"]["ap50_by_size"].get(k))
        for k in keys
    }
    print("\ntiled / whole AP50: " + ", ".join(f"{k} {fmt(v)}" for k, v in small.items()))
    print(
        f"tiled path {speed['ours']:.1f} frames/s vs the bare engine on the same "
        f"{speed['pieces']} tiles {speed['bare']:.1f} frames/s: {speed['ours'] / speed['bare']:.2f}"
    )
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"{time.perf_counter() - started:.0f} s in all; load average {load}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "speed": speed, "ratios": small}))


def _ratio(ours: float | None, baseline: float | None) -> float | None:
    if ours is None or baseline is None:
        return None
    return ours / baseline if baseline > 0 else (math.inf if ours > 0 else None)


if __name__ == "__main__":
    sys.exit(main())

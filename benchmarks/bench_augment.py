"""Augmentation throughput: our process-pool pass against the original's design and the codec floor.

All three run in the same process on the same 200 synthetic 1280x720 JPEG annotations (3-10 boxes
each) and write the same set of outputs (the original plus 7 variants, each with its label):

- ``ours``: `azaion_training.augment.augment_tree(once=True)`, what ``azaion-augment --once``
  runs, with its worker processes (their start-up included);
- ``original``: the original's design exactly as issue 17 defines it: a `ThreadPoolExecutor` over
  the sources with the default worker count, ``cv2.imread`` of the source, ONE Albumentations
  ``Compose`` of SPEC 6's transforms (shared by the threads, not reseeded) called once per variant,
  ``cv2.imwrite`` of each of the 7 variants and of the original, the label text written beside
  each;
- ``codec floor``: per annotation, read and decode the image once and encode it 8 times as JPEG,
  no transforms and no writes, in a process pool of the same size: what the machine's JPEG codec
  allows at best.

The three run interleaved ``--repeat`` times and the median of each counts (the machine is shared:
ratios from the same run mean more than absolute numbers). Run: ``python
benchmarks/bench_augment.py`` (``--help`` for options). ``--unchanged N`` also times a pass over N
unchanged annotations (tiny placeholder files, recorded as done), the cost of the daemon's idle
passes. ``--json PATH`` writes the medians for ``run_all.py``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import shutil
import statistics
import tempfile
import threading
import time
from multiprocessing import forkserver
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from azaion_training.augment import Augmenter, augment_tree, build_pipeline
from azaion_training.augment.functional import arrays_to_boxes, boxes_to_arrays
from azaion_training.augment.plan import output_image_names, output_label_names, plan_pass
from azaion_training.augment.state import STATE_FILE, StateStore
from azaion_training.config import AugmentSettings
from azaion_training.demo.world import write_annotations
from azaion_training.fs import DataTree
from azaion_training.labels import clip_boxes, format_label, read_label

if TYPE_CHECKING:
    import albumentations as A


ORIGINAL_MIN_AREA = 0.0001
"""The original dropped every box under 0.01% of the image area (SPEC 6 changed that rule)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="annotations (default 200)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: CPUs)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median of each counts")
    parser.add_argument(
        "--grain",
        type=float,
        default=0.0,
        help="add Gaussian grain of this sigma to the sources (photo-like JPEG cost; default 0)",
    )
    parser.add_argument("--unchanged", type=int, default=0, help="also time N unchanged sources")
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder, keep it")
    parser.add_argument("--json", type=Path, default=None, help="write the medians here")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-augment-"))
    settings = AugmentSettings(workers=args.workers)
    workers = settings.workers or len(os.sched_getaffinity(0))
    print(f"cpus {os.cpu_count()}, workers {workers}, load average {_load()}")
    try:
        tree = DataTree(root=work / "ours").create()
        started = time.perf_counter()
        write_annotations(
            tree.data, args.count, width=args.width, height=args.height, objects=(3, 10), seed=1
        )
        if args.grain:
            _add_grain(tree, args.grain)
        sizes = [p.stat().st_size for p in tree.data.images.iterdir()]
        print(
            f"{args.count} annotations {args.width}x{args.height} made in {_since(started)}, "
            f"mean JPEG {sum(sizes) / len(sizes) / 1024:.0f} KiB"
        )
        images = args.count * (settings.variants + 1)
        wall: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}
        for round_ in range(args.repeat):
            for name, run in (
                ("ours", lambda: _ours(tree, settings)),
                ("original", lambda: _original(tree, work / "original", settings)),
                ("codec floor", lambda: _codec_floor(tree, settings, workers)),
            ):
                cpu_before = _cpu_seconds()
                seconds = run()
                used = _cpu_seconds() - cpu_before
                wall.setdefault(name, []).append(seconds)
                cpu.setdefault(name, []).append(used)
                print(
                    f"round {round_ + 1} {name:<12} {seconds:6.2f} s {images / seconds:7.1f} img/s"
                    f"   cpu {used:6.2f} s {images / used:7.1f} img/cpu-s"
                )
        _check_same_names(tree, work / "original")
        print(f"load average {_load()}")
        rates = {}
        for what, table, unit in (("wall", wall, "img/s"), ("cpu", cpu, "img/cpu-s")):
            rates[what] = {name: images / statistics.median(s) for name, s in table.items()}
            r = rates[what]
            print(
                f"{what:<4} (median of {args.repeat}): ours {r['ours']:.1f} | original "
                f"{r['original']:.1f} | codec floor {r['codec floor']:.1f} {unit}; "
                f"ours / original = {r['ours'] / r['original']:.2f}, "
                f"ours / codec floor = {r['ours'] / r['codec floor']:.2f}"
            )
        if args.json:
            args.json.write_text(json.dumps({"images": images, **rates}))
        if args.unchanged:
            _unchanged_pass(work / "unchanged", args.unchanged, settings)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def _ours(tree: DataTree, settings: AugmentSettings) -> float:
    shutil.rmtree(tree.data_processed.path, ignore_errors=True)
    started = time.perf_counter()
    summary = augment_tree(tree, settings, once=True, stop=threading.Event(), progress=False)
    seconds = time.perf_counter() - started
    assert summary is not None and summary.made == len(list(tree.data.labels.iterdir()))
    return seconds


def _original(tree: DataTree, out: Path, settings: AugmentSettings) -> float:
    """The original's design (see the module): threads, one shared Compose, imread / imwrite."""
    shutil.rmtree(out, ignore_errors=True)
    (out / "images").mkdir(parents=True)
    (out / "labels").mkdir()
    names = sorted(p.stem for p in tree.data.labels.iterdir())
    started = time.perf_counter()
    pipeline = build_pipeline()
    with concurrent.futures.ThreadPoolExecutor() as pool:
        list(pool.map(lambda name: _original_one(pipeline, tree, out, name, settings), names))
    return time.perf_counter() - started


def _original_one(
    pipeline: A.Compose, tree: DataTree, out: Path, name: str, settings: AugmentSettings
) -> None:
    image = cv2.imread(str(tree.data.images / f"{name}.jpg"))
    boxes = clip_boxes(read_label(tree.data.label_path(name)), min_area=ORIGINAL_MIN_AREA)
    bboxes, class_ids = boxes_to_arrays(boxes)
    image_names = output_image_names(name, ".jpg", variants=settings.variants)
    label_names = output_label_names(name, variants=settings.variants)
    quality = [cv2.IMWRITE_JPEG_QUALITY, settings.jpeg_quality]
    cv2.imwrite(str(out / "images" / image_names[0]), image, quality)
    (out / "labels" / label_names[0]).write_text(format_label(boxes))
    for index in range(1, settings.variants + 1):
        result = pipeline(image=image, bboxes=bboxes, class_ids=class_ids)
        moved = arrays_to_boxes(result["bboxes"], result["class_ids"])
        cv2.imwrite(str(out / "images" / image_names[index]), result["image"], quality)
        (out / "labels" / label_names[index]).write_text(
            format_label(clip_boxes(moved, min_area=ORIGINAL_MIN_AREA))
        )


def _codec_floor(tree: DataTree, settings: AugmentSettings, workers: int) -> float:
    images = sorted(tree.data.images.iterdir())
    started = time.perf_counter()
    # Not plain fork: the original's run above has started OpenCV's threads in this process.
    context = multiprocessing.get_context("forkserver")
    with concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_one_thread
    ) as pool:
        jobs = [(path, settings.variants + 1, settings.jpeg_quality) for path in images]
        list(pool.map(_decode_encode, jobs, chunksize=4))
    return time.perf_counter() - started


def _one_thread() -> None:
    cv2.setNumThreads(1)


def _decode_encode(job: tuple[Path, int, int]) -> int:
    path, encodes, quality = job
    image = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    return sum(
        len(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1])
        for _ in range(encodes)
    )


def _check_same_names(tree: DataTree, original: Path) -> None:
    """Both wrote the same image and label files (their pixels differ: the original is unseeded)."""
    for folder, theirs in (("images", original / "images"), ("labels", original / "labels")):
        ours = sorted(p.name for p in getattr(tree.data_processed, folder).iterdir())
        assert ours == sorted(p.name for p in theirs.iterdir()), f"{folder} differ"
    print(f"same outputs: {len(ours)} image and label files of the same names")


def _unchanged_pass(root: Path, count: int, settings: AugmentSettings) -> None:
    """Times a real pass over ``count`` sources that are all up to date."""
    tree = DataTree(root=root).create()
    started = time.perf_counter()
    for index in range(count):
        name = f"still_{index:07d}"
        (tree.data.images / f"{name}.jpg").write_bytes(b"x")
        (tree.data.labels / f"{name}.txt").write_bytes(b"")
        for image in output_image_names(name, ".jpg", variants=settings.variants):
            (tree.data_processed.images / image).write_bytes(b"")
        for label in output_label_names(name, variants=settings.variants):
            (tree.data_processed.labels / label).write_bytes(b"")
    with Augmenter(tree, settings) as augmenter:
        recipe = augmenter._recipe  # the recipe the pass will compare against
    plan = plan_pass(tree.data, tree.data_processed, {}, recipe=recipe, variants=settings.variants)
    with StateStore(tree.data_processed.path / STATE_FILE) as state:
        state.record((name, source.stamp) for name, source in plan.sources.items())
    print(f"{count} unchanged annotations ({count * 18} files) set up in {_since(started)}")
    os.sync()
    started = time.perf_counter()
    summary = augment_tree(tree, settings, once=True, stop=threading.Event(), progress=False)
    seconds = time.perf_counter() - started
    assert summary is not None and summary.unchanged == count and summary.made == 0
    print(f"pass over {count} unchanged annotations: {seconds:.2f} s")


def _add_grain(tree: DataTree, sigma: float) -> None:
    """Adds seeded Gaussian grain to every source image (re-encoded at quality 90)."""
    rng = np.random.default_rng(0)
    for path in sorted(tree.data.images.iterdir()):
        image = cv2.imread(str(path)).astype(np.float32)
        image += rng.normal(0, sigma, image.shape).astype(np.float32)
        grainy = np.clip(image, 0, 255).astype(np.uint8)
        path.write_bytes(cv2.imencode(".jpg", grainy, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process, its children and the fork server's children.

    Workers started by a fork server are its children, not ours, so their time is read from the
    server's ``/proc`` entry once it has reaped them (when a pool shuts down).
    """
    times = os.times()
    total = times.user + times.system + times.children_user + times.children_system
    server = forkserver._forkserver._forkserver_pid
    if server:
        fields = Path(f"/proc/{server}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        total += sum(int(value) for value in fields[11:15]) / ticks  # utime stime cutime cstime
    return total


def _since(started: float) -> str:
    return f"{time.perf_counter() - started:.1f} s"


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()

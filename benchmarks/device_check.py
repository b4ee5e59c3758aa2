"""The GPU check: training and inference on one CUDA GPU, each beside a baseline in the same run.

One table (and ``--json PATH``) from one run on one synthetic demo world:

- training throughput (images/s, AMP on): our trainer (``azaion-train``'s arguments and offline
  trainer) against Ultralytics' own ``yolo train`` on the same data, model, batch and epochs, at
  the SPEC's 1280 and at 640; images/s from ``results.csv`` over the epochs after the first
  (warm-up) and before the last (final validation);
- peak GPU memory of our 1280 run: the SPEC's ``yolo11m.yaml`` at batch 11 x 1280 (``torch.cuda``
  max allocated and reserved);
- end to end: ``azaion-train`` (formation, training, the gate's deployed scoring, export, install)
  on this device, exit code and time;
- inference: ``azaion-infer``'s pipeline (`infer_video`) on ONNX Runtime (CUDA when the
  ``onnxruntime-gpu`` wheel is installed; the table says which provider ran) against the bare
  engine on preloaded batches, and Ultralytics' predictor on the ``.pt`` (PyTorch on CUDA).

``--dry-run`` runs the same code on the CPU at tiny sizes (yolo11n, 32/64 px, a few images):
a check of the script itself, not of a GPU; its numbers mean nothing.

    PYTHONPATH=src:. python benchmarks/device_check.py [--dry-run] [--json PATH] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("YOLO_VERBOSE", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

from azaion_training.demo.world import write_annotations, write_video
from azaion_training.fs import AnnotationDir


@dataclass(frozen=True)
class Size:
    """What one check runs at."""

    model: str
    batch: int
    imgsz: tuple[int, int]
    """(small, large) training image sizes; the large one is also the memory check's."""
    images: int
    epochs: int
    device: str
    workers: int
    frames: int
    video: tuple[int, int]
    end_to_end: tuple[int, int, int]
    """Annotations (8 samples each), image side and epochs of the ``azaion-train`` run."""


FULL = Size("yolo11m.yaml", 11, (640, 1280), 88, 4, "0", 8, 400, (1280, 720), (30, 640, 2))
DRY = Size("yolo11n.yaml", 4, (32, 64), 8, 4, "cpu", 0, 16, (160, 96), (16, 64, 1))


@dataclass(frozen=True)
class Row:
    check: str
    ours: str
    baseline: str
    ratio: float | None


def make_world(root: Path, size: Size) -> Path:
    """A demo-world YOLO dataset at the large size: ``size.images`` train, a batch of valid."""
    side = size.imgsz[1]
    train = AnnotationDir(root / "train")
    valid = AnnotationDir(root / "valid")
    write_annotations(train, size.images, seed=1, width=side, height=side)
    write_annotations(valid, size.batch, seed=2, width=side, height=side)
    data_yaml = root / "data.yaml"
    names = {index: f"class{index}" for index in range(80)}
    content = {"path": str(root), "train": "train/images", "val": "valid/images", "names": names}
    data_yaml.write_text(yaml.safe_dump(content))
    return data_yaml


def images_per_s(results_csv: Path, images: int) -> float:
    """Training images/s between the end of epoch 1 and the end of the second-last epoch."""
    with open(results_csv, newline="") as handle:
        times = [float(row["time"]) for row in csv.DictReader(handle)]
    if len(times) < 3:
        raise RuntimeError(f"{results_csv}: need at least 3 epochs, found {len(times)}")
    return images * (len(times) - 2) / (times[-2] - times[0])


def train_ours(data_yaml: Path, out: Path, size: Size, imgsz: int) -> tuple[float, dict]:
    """Our trainer with ``azaion-train``'s arguments; returns images/s and peak CUDA memory."""
    import torch
    from ultralytics import YOLO

    from azaion_training._ultralytics import offline_trainer, provide_plot_fonts
    from azaion_training.config import Settings
    from azaion_training.train.job import training_arguments

    settings = Settings.model_validate(
        {
            "training": {
                "model": size.model,
                "epochs": size.epochs,
                "batch": size.batch,
                "imgsz": imgsz,
                "device": size.device,
                "workers": size.workers,
                "amp": True,
                "plots": False,
                "extra": {"val": False},
            }
        }
    )
    run_dir = out / f"ours-{imgsz}"
    memory: dict[str, float] = {}

    def peak(trainer: Any) -> None:
        if torch.cuda.is_available() and trainer.device.type == "cuda":
            memory["allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
            memory["reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30

    provide_plot_fonts()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    model = YOLO(size.model)
    model.add_callback("on_train_epoch_end", peak)
    model.train(
        trainer=offline_trainer(),
        **training_arguments(settings, data_yaml=data_yaml, run_dir=run_dir),
    )
    return images_per_s(run_dir / "results.csv", size.images), memory


def train_ultralytics(data_yaml: Path, out: Path, size: Size, imgsz: int) -> float:
    """Ultralytics' own ``yolo train`` (its CLI, a process of its own) on the same data."""
    name = f"yolo-{imgsz}"
    # the `yolo` console script's own entry point, run by this interpreter: packages installed
    # with `pip --target` (a GPU machine without network) have no script beside the interpreter
    yolo = [sys.executable, "-c", "from ultralytics.cfg import entrypoint; entrypoint()"]
    command = [*yolo, "detect", "train", f"model={size.model}", f"data={data_yaml}"]
    command += [f"epochs={size.epochs}", f"imgsz={imgsz}", f"batch={size.batch}"]
    command += [f"device={size.device}", f"workers={size.workers}", "amp=True", "val=False"]
    command += ["plots=False", f"project={out}", f"name={name}", "exist_ok=True"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"yolo train failed ({done.returncode}): {done.stderr[-2000:]}")
    return images_per_s(out / name / "results.csv", size.images)


def inference(weights: Path, out: Path, size: Size) -> list[Row]:
    """``azaion-infer``'s pipeline, the bare engine and Ultralytics' predictor on one video."""
    from benchmarks.bench_infer import bare_engine_fps, ours_fps, ultralytics_fps

    from azaion_training.export.onnx import export_onnx
    from azaion_training.infer.load import load_engine

    imgsz = size.imgsz[0]
    onnx = export_onnx(weights, out / "model.onnx", imgsz=imgsz, batch=4, nms=True)
    video = out / "world.mp4"
    write_video(video, frames=size.frames, width=size.video[0], height=size.video[1], seed=3)
    engine = load_engine(onnx)
    bare = bare_engine_fps(engine, video, every=4)
    ours = ours_fps(engine, video, every=4)
    theirs = ultralytics_fps(weights, video, every=4, imgsz=imgsz, frames=size.frames, save=False)
    import torch

    torch_device = "cuda" if torch.cuda.is_available() and size.device != "cpu" else "cpu"
    return [
        Row(
            f"infer fps, {engine.name} (ours / bare engine)",
            f"{ours:.1f}",
            f"{bare:.1f}",
            ours / bare,
        ),
        Row(
            f"infer fps, ours / Ultralytics .pt (PyTorch {torch_device})",
            f"{ours:.1f}",
            f"{theirs:.1f}",
            ours / theirs,
        ),
    ]


class Rows(list[Row]):
    """The table's rows, each also printed as soon as it is measured (a run cut short by its
    time limit still shows what it measured)."""

    def append(self, row: Row) -> None:
        super().append(row)
        ratio = "" if row.ratio is None else f"  ratio {row.ratio:.2f}"
        print(f"measured: {row.check}: {row.ours} / {row.baseline}{ratio}", flush=True)

    def __iadd__(self, rows: Any) -> Rows:
        for row in rows:
            self.append(row)
        return self


def end_to_end(work: Path, size: Size) -> Row:
    """``azaion-train`` as a user runs it, on this device: formation of a tree's samples,
    training (AMP), the gate's scoring of the exported model as deployed, and the install;
    its exit code, time and the deployed score from ``metrics.json``."""
    from tests.dataset.helpers import write_real_samples

    from azaion_training.fs import DataTree

    tree = DataTree(root=work / "e2e" / "azaion").create()
    sources, side, epochs = size.end_to_end
    write_real_samples(tree, sources, size=side, seed=5)  # the augmenter's 7 variants as links
    training = {"model": "yolo11n.yaml", "epochs": epochs, "batch": 16, "imgsz": side}
    training |= {"device": size.device, "workers": size.workers, "amp": True}
    config = work / "e2e" / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {"root_dir": str(tree.root), "training": training, "export": {"imgsz": side}}
        )
    )
    command = [sys.executable, "-m", "azaion_training.cli.train", "--config", str(config)]
    started = time.perf_counter()
    done = subprocess.run(
        [*command, "--no-progress", "--no-publish"], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"azaion-train exited {done.returncode}: {done.stderr[-2000:]}")
    metrics = json.loads(next(tree.models.rglob("metrics.json")).read_text())
    installed = tree.current_model_pt.is_file() and tree.current_model_onnx.is_file()
    return Row(
        f"azaion-train end to end on {size.device} (form, AMP, gate as deployed, export)",
        f"exit 0 in {seconds:.0f} s",
        f"installed: {installed}; {_deployed_score(metrics)}",
        None,
    )


def _deployed_score(metrics: dict[str, Any]) -> str:
    """The candidate's mAP50 as deployed, on the split the gate scored it on."""
    split, scores = next(iter(metrics["candidate"].items()))
    return f"mAP50 {scores['map50']:.3f} on {split}"


def check(size: Size, work: Path) -> list[Row]:
    data_yaml = make_world(work / "world", size)
    rows = Rows()
    memory: dict[str, float] = {}
    for imgsz in size.imgsz:
        ours, peak = train_ours(data_yaml, work / "runs", size, imgsz)
        theirs = train_ultralytics(data_yaml, work / "runs", size, imgsz)
        rows.append(
            Row(
                f"train images/s at {imgsz}, AMP ({size.model}, batch {size.batch})",
                f"{ours:.1f}",
                f"{theirs:.1f} (yolo train)",
                ours / theirs,
            )
        )
        memory = peak or memory
    large = size.imgsz[1]
    rows.append(
        Row(
            f"peak GPU memory, {size.model} batch {size.batch} x {large}",
            f"{memory['allocated_gib']:.2f} GiB allocated" if memory else "n/a (no GPU)",
            f"{memory['reserved_gib']:.2f} GiB reserved" if memory else "",
            None,
        )
    )
    weights = work / "runs" / f"ours-{size.imgsz[0]}" / "weights" / "best.pt"
    rows += inference(weights, work, size)
    rows.append(end_to_end(work, size))
    return rows


def table(rows: list[Row], *, title: str) -> str:
    width = max(len(row.check) for row in rows)
    lines = [title, f"{'check':<{width}}  {'ours':>22}  {'baseline':>26}  {'ratio':>6}"]
    for row in rows:
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}"
        lines.append(f"{row.check:<{width}}  {row.ours:>22}  {row.baseline:>26}  {ratio:>6}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="the same code on CPU, tiny")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args(argv)
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print("device_check: no CUDA GPU here; --dry-run checks the script on CPU", file=sys.stderr)
        return 1
    size = DRY if args.dry_run else FULL
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="device-check-") as scratch:
        work = args.keep or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        rows = check(size, work)
    device = "CPU (dry run)" if args.dry_run else torch.cuda.get_device_name(0)
    seconds = time.perf_counter() - started
    print(
        table(rows, title=f"device check on {device}, torch {torch.__version__}, {seconds:.0f} s")
    )
    if args.json:
        record = {"device": device, "seconds": seconds, "rows": [asdict(row) for row in rows]}
        args.json.write_text(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

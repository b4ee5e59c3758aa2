"""Runs every benchmark and prints one table: stage, ours, baseline, ratio, goal, met (SPEC 13).

Each benchmark runs in its own process (``bench_*.py --json``), prints its own detail as it goes,
and hands its medians back; the table at the end compares them with the goals of SPEC section 13
and issue 17. Every ratio is measured in one run on one input, ours and the baseline interleaved,
so it means something even on a loaded machine where the absolute numbers do not.

    PYTHONPATH=src:. python benchmarks/run_all.py            # full sizes (tens of minutes)
    PYTHONPATH=src:. python benchmarks/run_all.py --quick    # smaller inputs (a few minutes)
    PYTHONPATH=src:. python benchmarks/run_all.py --only augment,queue

In ``--quick`` mode the dataset goal of 60 s for 100,000 sources is scaled to the sources formed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOAL_SOURCES = 100_000
GOAL_FORM_S = 60.0
GOAL_RSS_MB = 300.0


@dataclass(frozen=True)
class Row:
    """One line of the table; ``met`` is None where the stage has no goal."""

    stage: str
    ours: str
    baseline: str
    ratio: float | None
    goal: str
    met: bool | None


@dataclass(frozen=True)
class Bench:
    """A benchmark script, its arguments at full and quick size, and its rows."""

    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    rows: Callable[[dict, bool], list[Row]]


def augment_rows(r: dict, quick: bool) -> list[Row]:
    wall = r["wall"]
    ours, original, floor = wall["ours"], wall["original"], wall["codec floor"]
    return [
        Row(
            "augment vs the original's design",
            f"{ours:.1f} img/s",
            f"{original:.1f} img/s",
            ours / original,
            ">= 2x",
            ours / original >= 2,
        ),
        Row(
            "augment per CPU-second vs the original's design",
            f"{r['cpu']['ours']:.1f} img/cpu-s",
            f"{r['cpu']['original']:.1f} img/cpu-s",
            r["cpu"]["ours"] / r["cpu"]["original"],
            "-",
            None,
        ),
        Row(
            "augment vs the JPEG codec floor",
            f"{ours:.1f} img/s",
            f"{floor:.1f} img/s",
            ours / floor,
            ">= 0.75",
            ours / floor >= 0.75,
        ),
    ]


def queue_rows(r: dict, quick: bool) -> list[Row]:
    wall, cpu = r["wall"], r["cpu"]
    ours = wall["batched"]
    kb = r["bytes"] / 1000
    return [
        Row(
            f"queue ingest, durable, {kb:.0f} KB images (vs the original's non-durable way)",
            f"{ours:.0f} msg/s",
            f"{wall['original']:.0f} msg/s",
            ours / wall["original"],
            ">= 1,000 msg/s",
            ours >= 1000,
        ),
        Row(
            "queue ingest per CPU-second of the consumer (vs the bare stream client)",
            f"{cpu['batched']:.0f} msg/cpu-s",
            f"{cpu['raw stream']:.0f} msg/cpu-s",
            cpu["batched"] / cpu["raw stream"],
            "-",
            None,
        ),
    ]


def dataset_rows(r: dict, quick: bool) -> list[Row]:
    seconds, sources = r["seconds"], r["sources"]
    goal_s = GOAL_FORM_S * sources / GOAL_SOURCES
    scaled = " (scaled)" if sources != GOAL_SOURCES else ""
    ours = seconds["hard links"]
    return [
        Row(
            f"dataset formation, {sources:,} sources x 8 (vs copying)",
            f"{ours:.1f} s",
            f"{seconds['copies']:.1f} s",
            seconds["copies"] / ours,
            f"<= {goal_s:.0f} s{scaled}",
            ours <= goal_s,
        ),
        Row(
            "dataset formation, peak RSS",
            f"{r['peak_rss_mb']:.0f} MB",
            "-",
            None,
            f"<= {GOAL_RSS_MB:.0f} MB",
            r["peak_rss_mb"] <= GOAL_RSS_MB,
        ),
    ]


def infer_rows(r: dict, quick: bool) -> list[Row]:
    ours = r["ours"]
    return [
        Row(
            "azaion-infer vs the bare engine",
            f"{ours:.1f} frames/s",
            f"{r['bare']:.1f} frames/s",
            ours / r["bare"],
            ">= 0.9",
            ours / r["bare"] >= 0.9,
        ),
        Row(
            "azaion-infer vs Ultralytics' predictor",
            f"{ours:.1f} frames/s",
            f"{r['ultralytics']:.1f} frames/s",
            ours / r["ultralytics"],
            ">= 1.5x",
            ours / r["ultralytics"] >= 1.5,
        ),
        Row(
            "azaion-infer vs Ultralytics' predictor writing its video too (save=True)",
            f"{ours:.1f} frames/s",
            f"{r['save']:.1f} frames/s",
            ours / r["save"],
            "-",
            None,
        ),
    ]


def tiling_rows(r: dict, quick: bool) -> list[Row]:
    tiled, whole = r["results"]["tiled"], r["results"]["whole"]
    speed = r["speed"]

    def ap(run: dict, key: str) -> str:
        value = run["ap50_by_size"].get(key)
        return "-" if value is None else f"{value:.3f}"

    rows = []
    for key, label, goal, met in (
        ("tiny", "8-16 px", ">= 2x", lambda x: x >= 2),
        ("very_tiny", "2-8 px", ">= 2x", lambda x: x >= 2),
        ("medium", "32-64 px", ">= 1.0x", lambda x: x >= 1),
    ):
        ratio = r["ratios"].get(key)
        rows.append(
            Row(
                f"tiled vs whole-frame AP50, objects {label} (same budget)",
                ap(tiled, key),
                ap(whole, key),
                ratio,
                goal,
                None if ratio is None else met(ratio),
            )
        )
    rows.append(
        Row(
            "tiled vs whole-frame video recall",
            f"{tiled['video_recall']:.3f}",
            f"{whole['video_recall']:.3f}",
            tiled["video_recall"] / whole["video_recall"] if whole["video_recall"] else None,
            "-",
            None,
        )
    )
    rows.append(
        Row(
            "tiled inference vs the bare engine on the same tiles",
            f"{speed['ours']:.1f} frames/s",
            f"{speed['bare']:.1f} frames/s",
            speed["ours"] / speed["bare"],
            ">= 0.9",
            speed["ours"] / speed["bare"] >= 0.9,
        )
    )
    return rows


def crypto_rows(r: dict, quick: bool) -> list[Row]:
    return [
        Row(
            f"model {step}ion vs openssl enc",
            f"{r[f'{step} ours']:.0f} MB/s",
            f"{r[f'{step} openssl']:.0f} MB/s",
            r[f"{step} ours"] / r[f"{step} openssl"],
            "-",
            None,
        )
        for step in ("encrypt", "decrypt")
    ]


BENCHES = {
    "augment": Bench("bench_augment.py", ("--count", "200"), ("--count", "40"), augment_rows),
    "queue": Bench("bench_queue.py", ("--messages", "2000"), ("--messages", "500"), queue_rows),
    "dataset": Bench(
        "bench_dataset.py", ("--sources", str(GOAL_SOURCES)), ("--sources", "5000"), dataset_rows
    ),
    "infer": Bench("bench_infer.py", ("--frames", "400"), ("--frames", "120"), infer_rows),
    "tiling": Bench("bench_tiling.py", (), ("--quick",), tiling_rows),
    "crypto": Bench(
        "bench_crypto.py", ("--size-mb", "200"), ("--size-mb", "50", "--repeat", "1"), crypto_rows
    ),
}


def run_bench(name: str, bench: Bench, *, quick: bool, scratch: Path) -> list[Row]:
    """Runs one benchmark in its own process; a failure becomes one row saying so."""
    out = scratch / f"{name}.json"
    command = [sys.executable, str(HERE / bench.script), *(bench.quick if quick else bench.full)]
    print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    done = subprocess.run([*command, "--json", str(out)], check=False)
    print(f"=== {name}: {time.perf_counter() - started:.0f} s", flush=True)
    if done.returncode != 0 or not out.is_file():
        return [Row(name, "failed", "-", None, "-", False)]
    return bench.rows(json.loads(out.read_text()), quick)


def table(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    lines = ["| stage | ours | baseline | ratio | goal | met |", "|---|---|---|---|---|---|"]
    for row in rows:
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
        met = "-" if row.met is None else ("yes" if row.met else "no")
        lines.append(
            f"| {row.stage} | {row.ours} | {row.baseline} | {ratio} | {row.goal} | {met} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs, fewer rounds")
    parser.add_argument(
        "--only", default=",".join(BENCHES), help=f"comma-separated subset of {','.join(BENCHES)}"
    )
    args = parser.parse_args()
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(names) - set(BENCHES))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    rows: list[Row] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-all-") as scratch:
        for name in names:
            rows += run_bench(name, BENCHES[name], quick=args.quick, scratch=Path(scratch))
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    mode = "--quick" if args.quick else "full size"
    print(
        f"\n{mode}, {os.cpu_count()} CPUs, load average at the end {load}, "
        f"{time.perf_counter() - started:.0f} s in all\n"
    )
    print(table(rows))


if __name__ == "__main__":
    main()

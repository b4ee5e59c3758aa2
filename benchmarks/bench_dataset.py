"""Dataset formation: hard links against copies, on the same input, in the same run.

Writes ``--sources`` annotations with their 7 variants each (12,500 x 8 = 100,000 image + label
pairs of tiny files by default) into a temporary ``data-processed/``, then forms a dataset twice:
once hard-linking the files (the default) and once copying them. Prints the seconds of each,
their ratio and the process's peak RSS. The catalogue and the split ledger are on the measured
path (every source is looked up and placed). Seeded and reproducible; run it by hand
(``--json PATH`` writes the numbers for ``run_all.py``):

    PYTHONPATH=src python benchmarks/bench_dataset.py [--sources 12500] [--image-bytes 2048]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from azaion_training.config import load_settings
from azaion_training.dataset import form_dataset
from azaion_training.fs import DataTree
from azaion_training.samples import sample_names


def write_samples(tree: DataTree, sources: int, image_bytes: int) -> int:
    """Tiny placeholder images (random bytes) and one-box labels; returns the sample count."""
    folder = tree.data_processed
    image = os.urandom(image_bytes)
    count = 0
    for index in range(sources):
        for name in sample_names(f"frame_{index:06d}"):
            (folder.images / f"{name}.jpg").write_bytes(image)
            (folder.labels / f"{name}.txt").write_text(f"{index % 80} 0.5 0.5 0.2 0.1\n")
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=12_500, help="source annotations")
    parser.add_argument("--image-bytes", type=int, default=2048, help="size of each image file")
    parser.add_argument("--dir", type=Path, default=None, help="where to work (a temp folder)")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-dataset-", dir=args.dir))
    try:
        tree = DataTree(root=work / "azaion").create()
        settings = load_settings(environ={"AZAION_ROOT_DIR": str(tree.root)}, env_file=None)
        started = time.perf_counter()
        samples = write_samples(tree, args.sources, args.image_bytes)
        os.sync()  # warm: the input is in the page cache and on disk, not still being flushed
        print(
            f"input: {args.sources} sources, {samples} samples ({2 * samples} files) "
            f"written in {time.perf_counter() - started:.1f} s"
        )
        timings = {}
        for mode, link in (("hard links", True), ("copies", False)):
            started = time.perf_counter()
            formed = form_dataset(
                settings, tree, date=dt.date(2026, 1, 1), link=link, progress=False
            )
            timings[mode] = time.perf_counter() - started
            counts = ", ".join(f"{k} {v.samples}" for k, v in formed.counts.items())
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"{mode:<10}: {timings[mode]:6.2f} s  ({counts}; linked {formed.linked}, "
                f"copied {formed.copied})  -> {formed.path.name}; peak RSS so far {peak_mb:.0f} MB"
            )
            if mode == "hard links":
                peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(f"peak RSS of this process so far (input writing included): {peak_mb:.0f} MB")
        print(f"ratio copies / hard links: {timings['copies'] / timings['hard links']:.2f}x")
        if args.json:
            numbers = {"sources": args.sources, "samples": samples, "peak_rss_mb": peak_mb}
            args.json.write_text(json.dumps({**numbers, "seconds": timings}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

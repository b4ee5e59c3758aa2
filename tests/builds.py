"""What the suite trains once and keeps: each build in pytest's cache under a key of its recipe.

`built` makes one under a file lock, so parallel pytest-xdist workers make each once (a second
asker waits for the first) and an interrupted build leaves nothing that looks finished. As a
session starts, `start_prebuild` makes the builds its tests need in a background process
(``python -m tests.builds``), while the test modules that wait for none run first
(`tests.scheduling`): the training overlaps the tests that do not need it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock

PREBUILD_LOG = "prebuild.log"


@dataclass(frozen=True)
class Build:
    """One thing the suite trains once.

    Attributes:
        fixture: the session fixture that hands it out (how a test is known to need it).
        key: its cache key (`tests.helpers.recipe_key` of the recipe and the code it runs).
        make: writes it into an empty folder.
        products: the files that make it finished.
    """

    fixture: str
    key: Callable[[], str]
    make: Callable[[Path], object]
    products: tuple[str, ...]


def known_builds() -> tuple[Build, ...]:
    """Every build of the suite, in the order the prebuild makes them."""
    from tests.export.conftest import TINY_MODEL
    from tests.infer.conftest import DETECTOR
    from tests.train.small_world import MOSAIC_DETECTOR

    return (DETECTOR, MOSAIC_DETECTOR, TINY_MODEL)


def builds_root(config: pytest.Config) -> Path:
    """The folder of the builds in pytest's cache (``-o cache_dir``: `scripts/test.sh`)."""
    return Path(config.cache.mkdir("builds"))


def built(root: Path, build: Build) -> Path:
    """The finished folder of ``build`` under ``root``, made first if it is not there."""
    key = build.key()
    folder = root / key
    with FileLock(root / f"{key}.lock"):
        if not _missing(folder, build):
            return folder
        shutil.rmtree(folder, ignore_errors=True)
        for stale in root.glob(f".{key}-*"):  # of a build that was killed
            shutil.rmtree(stale, ignore_errors=True)
        work = Path(tempfile.mkdtemp(dir=root, prefix=f".{key}-"))
        try:
            build.make(work)
            missing = _missing(work, build)
            if missing:
                raise RuntimeError(f"the {build.fixture} build made no {', '.join(missing)}")
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        work.rename(folder)
    return folder


def needed(items: Sequence[pytest.Item]) -> list[Build]:
    """The builds that ``items`` need, in the prebuild's order."""
    wanted = {name for item in items for name in getattr(item, "fixturenames", ())}
    return [build for build in known_builds() if build.fixture in wanted]


def finished(root: Path, build: Build) -> bool:
    """Whether ``build`` is made and kept under ``root``."""
    return not _missing(root / build.key(), build)


def _missing(folder: Path, build: Build) -> list[str]:
    """The products of ``build`` that ``folder`` lacks."""
    return [name for name in build.products if not (folder / name).is_file()]


def start_prebuild(root: Path, builds: Sequence[Build]) -> subprocess.Popen[bytes] | None:
    """Starts ``python -m tests.builds ROOT FIXTURE...`` for the ``builds`` that are not finished;
    its output goes to ``ROOT/prebuild.log``. None when there is nothing to make."""
    missing = [build for build in builds if not finished(root, build)]
    if not missing:
        return None
    from tests.helpers import subprocess_env

    with (root / PREBUILD_LOG).open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.builds", str(root), *(b.fixture for b in missing)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=subprocess_env(),
        )


def finish_prebuild(
    process: subprocess.Popen[bytes] | None, *, interrupted: bool, timeout: float = 900
) -> None:
    """Waits for a prebuild that is still running (at most ``timeout`` s, the tests' own bound),
    or ends it when the session was interrupted (what it was making is dropped; the next asker
    makes it again)."""
    if process is None or process.poll() is not None:
        return
    if not interrupted:
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            pass
    process.terminate()
    process.wait()


def main(argv: Sequence[str]) -> int:
    """Makes the named builds under the root (``ROOT FIXTURE...``), with the suite's network guard:
    a download attempt fails the build."""
    from tests.network import loopback_only

    root, names = Path(argv[0]), set(argv[1:])
    os.environ.update(YOLO_OFFLINE="1", YOLO_AUTOINSTALL="false", MPLBACKEND="Agg")
    with loopback_only():
        for build in known_builds():
            if build.fixture in names:
                print(f"prebuild: {build.fixture} in {built(root, build)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

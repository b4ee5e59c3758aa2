"""What a run was made with: package and library versions, the git commit, the device."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

LIBRARIES = ("azaion-training", "ultralytics", "torch", "onnxruntime", "faster-coco-eval")
"""The distributions whose versions a report lists."""


def versions(*, device: str = "") -> dict[str, str]:
    """Name -> version for `LIBRARIES`, Python, the git commit of the source tree (when it is a
    git checkout), and the training device (``device`` as asked, and what torch sees)."""
    found = {name: _version(name) for name in LIBRARIES}
    found["python"] = platform.python_version()
    found["git commit"] = git_commit(Path(__file__).resolve().parent) or "none (not a git checkout)"
    found["device"] = f"{device or 'auto'}; {_accelerator()}"
    found["host"] = f"{platform.machine()}, {platform.system()} {platform.release()}"
    return found


def git_commit(folder: Path) -> str | None:
    """The commit checked out where ``folder`` lies (``+ changes`` when the tree differs)."""
    try:
        commit = _git(folder, "rev-parse", "--short=12", "HEAD")
        dirty = _git(folder, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit} + changes" if dirty else commit


def _git(folder: Path, *arguments: str) -> str:
    command = ["git", "-C", str(folder), *arguments]
    done = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        command, capture_output=True, text=True, timeout=5, check=True
    )
    return done.stdout.strip()


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _accelerator() -> str:
    """What torch sees, if this process has loaded it (training has; importing it only for
    this line would cost seconds)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return "accelerator not probed (torch not loaded)"
    if torch.cuda.is_available():
        return f"CUDA {torch.version.cuda}: {torch.cuda.get_device_name(0)}"
    return f"CPU ({platform.processor() or platform.machine()}), no CUDA device"

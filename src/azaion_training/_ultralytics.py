"""The Ultralytics boundary: offline patches, and the one translation of Ultralytics' errors.

Nothing here reaches the network. Ultralytics would otherwise download a font for its plots
(`provide_plot_fonts` gives it matplotlib's DejaVu Sans under the names it looks for) and
``yolo26n.pt`` for its AMP check on a GPU (`offline_trainer` skips that download). The console
scripts also set ``YOLO_OFFLINE=1`` before Ultralytics is imported, which stops its connectivity
probe and telemetry.

`launched_trainer` is the trainer of a run started by PyTorch's launcher on several machines
(`azaion_training.train.distributed`): Ultralytics takes its world size from the local device
list and spawns its own DDP workers; this one takes the launcher's ranks and process group.

Ultralytics raises bare ``Exception``s of many kinds; `ultralytics_errors` turns any of them
into one of ours (training, validation and the ONNX export all go through it).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from azaion_training.errors import AzaionError
from azaion_training.fs import atomic_writer

logger = logging.getLogger(__name__)

CONFIG_FOLDER = ".ultralytics"
"""Ultralytics' settings folder (its ``settings.json``, the plot fonts) under the data root,
instead of ``~/.config/Ultralytics`` outside the root."""

_PLOT_FONTS = ("Arial.ttf", "Arial.Unicode.ttf")
_FALLBACK_FONT = "DejaVuSans.ttf"


@contextlib.contextmanager
def ultralytics_errors(error: type[AzaionError], what: str) -> Iterator[None]:
    """Re-raises whatever Ultralytics raises inside the block as ``error("{what}: ...")``.

    Our own errors pass through unchanged.
    """
    try:
        yield
    except AzaionError:
        raise
    except Exception as exc:  # Ultralytics raises bare Exceptions of many kinds
        raise error(f"{what}: {exc}") from exc


def config_environment(root: Path) -> dict[str, str]:
    """The environment that gives Ultralytics its settings folder under ``root``
    (`CONFIG_FOLDER`); the console scripts apply it at start-up, before Ultralytics is imported
    (it reads ``YOLO_CONFIG_DIR`` once, at import). A folder that cannot be written makes
    Ultralytics fall back to a temporary one."""
    return {"YOLO_CONFIG_DIR": str(Path(root).absolute() / CONFIG_FOLDER)}


def provide_plot_fonts() -> None:
    """Gives Ultralytics the fonts it looks for, so it never downloads them.

    Ultralytics draws labels with ``Arial.ttf`` (``Arial.Unicode.ttf`` for other scripts) and
    downloads the file into its settings folder when it is missing. Matplotlib (a dependency)
    ships DejaVu Sans, which covers both; a copy is put under each name once.
    """
    import matplotlib
    from ultralytics.utils import USER_CONFIG_DIR

    fallback = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / _FALLBACK_FONT
    for name in _PLOT_FONTS:
        target = Path(USER_CONFIG_DIR) / name
        if not target.is_file():
            with open(fallback, "rb") as source, atomic_writer(target) as handle:
                shutil.copyfileobj(source, handle)
            logger.debug("plot font %s <- %s", target, fallback)


@functools.cache
def offline_trainer() -> type:
    """`OfflineDetectionTrainer`, built on first use (Ultralytics is imported lazily)."""
    from ultralytics.engine import trainer as engine
    from ultralytics.models.yolo.detect import DetectionTrainer

    class OfflineDetectionTrainer(DetectionTrainer):
        """Ultralytics' detection trainer with an AMP check that never downloads.

        Ultralytics checks AMP on a GPU by comparing ``yolo26n.pt`` in FP32 and FP16, and
        downloads those weights when they are missing. Here the check runs only when the weights
        are already on disk; otherwise ``amp`` stays as set (``training.amp``). On CPU AMP is off
        either way. Being a class (not a patch at import), it also applies in DDP workers, which
        Ultralytics starts from the trainer class.
        """

        def _setup_train(self) -> None:
            original = engine.check_amp
            engine.check_amp = _offline_check_amp(original)
            try:
                super()._setup_train()
            finally:
                engine.check_amp = original

    return OfflineDetectionTrainer


def _offline_check_amp(original: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def check_amp(model: Any) -> bool:
        from ultralytics.utils import WEIGHTS_DIR

        device = next(model.parameters()).device
        if device.type != "cuda" or (Path(WEIGHTS_DIR) / "yolo26n.pt").is_file():
            return bool(original(model))
        logger.info("AMP check skipped (it would download yolo26n.pt); AMP stays on")
        return True

    return check_amp


@functools.cache
def launched_trainer() -> type:
    """`LaunchedDetectionTrainer`, built on first use (Ultralytics is imported lazily)."""
    import torch
    from torch import distributed as dist
    from ultralytics.utils import LOCAL_RANK, RANK
    from ultralytics.utils.torch_utils import strip_optimizer

    class LaunchedDetectionTrainer(offline_trainer()):  # type: ignore[misc]
        """The offline trainer as one rank of a launched run (torchrun; seams of 8.4).

        The process group is already joined (`azaion_training.train.distributed.Group`), and
        Ultralytics reads ``RANK`` / ``LOCAL_RANK`` from the environment at import. This class
        takes the world size from the group instead of the local device list (so it never
        spawns DDP workers of its own), puts the rank on its GPU (``device`` lists the
        machine's GPUs, one per local rank) or leaves it on the CPU (gloo), and lets
        Ultralytics' ``_setup_train`` wrap the model in DDP and build a ``DistributedSampler``,
        so each rank trains on its own disjoint part of every epoch.

        Ultralytics' final validation of ``best.pt`` is left out: it is a collective that
        would need ``best.pt`` on every machine, and rank 0 scores ``best.pt`` itself
        afterwards. Rank 0 still strips the optimizer from the checkpoints.
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.world_size = dist.get_world_size()
            self.ddp = False

        def _setup_ddp(self) -> None:
            if self.device.type == "cuda":
                index = int(str(self.args.device).split(",")[LOCAL_RANK])
                self.device = torch.device("cuda", index)
                torch.cuda.set_device(index)

        def _setup_train(self) -> None:
            if self.device.type == "cuda":
                super()._setup_train()
                return
            original = torch.nn.parallel.DistributedDataParallel
            torch.nn.parallel.DistributedDataParallel = _cpu_ddp(original)  # type: ignore[misc]
            try:
                super()._setup_train()
            finally:
                torch.nn.parallel.DistributedDataParallel = original  # type: ignore[misc]

        def final_eval(self) -> None:
            if RANK == 0:
                results = strip_optimizer(self.last) if self.last.exists() else {}
                if self.best.exists():
                    strip_optimizer(
                        self.best, updates={"train_results": results.get("train_results")}
                    )

    return LaunchedDetectionTrainer


def _cpu_ddp(original: type) -> type:
    """``DistributedDataParallel`` for a CPU model: Ultralytics passes ``device_ids=[None]``
    (the CPU device's index), which DDP refuses for a CPU module."""

    class CpuDistributedDataParallel(original):  # type: ignore[misc, valid-type]
        def __init__(self, module: Any, device_ids: Any = None, **kwargs: Any) -> None:
            if device_ids == [None]:
                device_ids = None
            super().__init__(module, device_ids=device_ids, **kwargs)

    return CpuDistributedDataParallel


def import_before_group() -> None:
    """Imports Ultralytics before a process group is joined.

    Its import reads its settings file inside ``torch_distributed_zero_first``: a barrier once a
    process group exists. A rank that imported it later alone (rank 0 unpickling a checkpoint to
    resume, while the others wait for its decision) would wait there until the timeout.
    """
    import ultralytics  # noqa: F401


def as_single_process() -> None:
    """Makes the Ultralytics modules of this process see no launcher from now on.

    Ultralytics reads ``RANK`` and ``LOCAL_RANK`` from the environment at import into the
    globals of each module; its validator and exporter then treat rank 0 as one of several
    (collectives, the GPU of the local rank). Rank 0 of a launched run, alone after training,
    scores, exports and publishes as a single process: the copies in every loaded Ultralytics
    module (and ``ultralytics.utils``, for modules imported later) are set to -1.
    """
    for name, module in list(sys.modules.items()):
        if name == "ultralytics" or name.startswith("ultralytics."):
            for constant in ("RANK", "LOCAL_RANK"):
                if isinstance(getattr(module, constant, None), int):
                    setattr(module, constant, -1)

"""The Ultralytics boundary: offline patches, and the one translation of Ultralytics' errors.

Nothing here reaches the network. Ultralytics would otherwise download a font for its plots
(`provide_plot_fonts` gives it matplotlib's DejaVu Sans under the names it looks for) and
``yolo26n.pt`` for its AMP check on a GPU (`offline_trainer` skips that download). The console
scripts also set ``YOLO_OFFLINE=1`` before Ultralytics is imported, which stops its connectivity
probe and telemetry.

Ultralytics raises bare ``Exception``s of many kinds; `ultralytics_errors` turns any of them
into one of ours (training, validation and the ONNX export all go through it).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from azaion_training.errors import AzaionError
from azaion_training.fs import atomic_writer

logger = logging.getLogger(__name__)

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

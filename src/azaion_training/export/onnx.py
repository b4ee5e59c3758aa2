"""ONNX export through Ultralytics: fixed batch, NMS inside the graph, class names in the metadata.

The exported graph takes ``images`` of shape ``[batch, 3, imgsz, imgsz]`` (RGB, 0..1, letterboxed)
and returns ``output0`` of shape ``[batch, 300, 6]``: ``x1, y1, x2, y2, confidence, class`` in
input pixels. Ultralytics writes the class names and the image size into the model metadata.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from azaion_training._ultralytics import ultralytics_errors
from azaion_training.boxes import MAX_DETECTIONS
from azaion_training.errors import ExportError
from azaion_training.fs import atomic_move, link_or_copy

logger = logging.getLogger(__name__)


def export_onnx(
    weights: Path,
    out: Path,
    *,
    imgsz: int,
    batch: int,
    nms: bool = True,
    device: str | None = None,
    opset: int | None = None,
) -> Path:
    """Exports a trained ``.pt`` to ONNX at ``out`` (written atomically).

    Args:
        weights: an Ultralytics detection checkpoint.
        out: the ``.onnx`` file to write; its folder is created.
        imgsz: square input size.
        batch: fixed batch size of the graph.
        nms: put NMS inside the graph (output ``[batch, 300, 6]``); without it the raw head.
        device: where to trace (``"cpu"``, ``"0"``); Ultralytics picks when ``None``.
        opset: the ONNX opset; Ultralytics picks the newest its torch supports when ``None``.

    Raises:
        ExportError: the checkpoint cannot be loaded or Ultralytics' export fails.
    """
    if not weights.is_file():
        raise ExportError(f"weights {weights} do not exist")
    from ultralytics import YOLO

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".export-") as work:
        staged = Path(work) / "model.pt"
        link_or_copy(weights, staged)
        with ultralytics_errors(ExportError, f"ONNX export of {weights} failed"):
            model = YOLO(str(staged))
            exported = model.export(
                format="onnx",
                imgsz=imgsz,
                batch=batch,
                nms=nms,
                max_det=MAX_DETECTIONS,
                device=device,
                opset=opset,
                verbose=False,
            )
        atomic_move(Path(exported), out)
        shutil.rmtree(work, ignore_errors=True)
    logger.info("exported %s -> %s (imgsz %d, batch %d, nms %s)", weights, out, imgsz, batch, nms)
    return out


def onnx_class_names(onnx_file: Path) -> list[str]:
    """The class names Ultralytics wrote into an exported ONNX's metadata (``names``)."""
    import onnx

    from azaion_training.infer.engine import names_from_metadata

    model = onnx.load(str(onnx_file), load_external_data=False)
    return names_from_metadata({prop.key: prop.value for prop in model.metadata_props})

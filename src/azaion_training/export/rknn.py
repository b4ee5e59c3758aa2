"""RKNN models for Rockchip NPUs (rk3588), converted in rknn-toolkit2's own virtual environment.

rknn-toolkit2 pins old numpy and torch, so it lives in a separate environment made by
``scripts/setup_rknn.sh`` and is driven as a subprocess: `convert_onnx_to_rknn` sends one JSON
request to ``rknn_worker.py`` (run by that environment's Python) and reads one JSON result back
(the protocol is in the worker's docstring).

The toolkit rejects the NMS-in-graph ONNX, so the model is exported as Ultralytics' own
``format="rknn"`` export prepares it: batch 1 (the toolkit expands the batch), opset 19, no NMS,
the raw head. As Ultralytics does for INT8, the box rows are divided by the input size, so one
per-tensor INT8 scale keeps the class scores. The RKNN model therefore takes uint8 RGB images
``[batch, imgsz, imgsz, 3]`` (NHWC, letterboxed; the model divides by 255 itself) and returns
``[batch, 4 + nc, anchors]``: ``cx, cy, w, h`` as fractions of the input, then the class scores
(0..1). `azaion_training.infer.head.decode_predictions` turns that into boxes, in the export's
simulator check and in `azaion_training.infer.rknn.RknnEngine` on the board alike.

The model is built for ``batch`` images at a time (``rknn_batch_size``); the metadata file beside
it (`azaion_training.infer.metadata`) records the input size, that batch, the class names and how
it was built, and the engine feeds exactly that batch.

With ``verify`` images, the model the toolkit has just built runs in its simulator (x86, no board)
and its boxes are compared with ONNX Runtime's on the same ONNX and images (`compare_detections`).
"""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from azaion_training.boxes import match_by_class
from azaion_training.errors import ExportError
from azaion_training.export.onnx import export_onnx, onnx_class_names
from azaion_training.fs import atomic_move, atomic_write_bytes
from azaion_training.infer.head import decode_predictions
from azaion_training.infer.metadata import ModelMetadata, metadata_path, write_metadata

logger = logging.getLogger(__name__)

RKNN_OPSET = 19
"""The newest opset rknn-toolkit2 reads."""

WORKER = Path(__file__).with_name("rknn_worker.py")
SETUP_SCRIPT = "scripts/setup_rknn.sh"
PROJECT_ROOT = Path(__file__).resolve().parents[3]

CONFIDENCE, MARGIN = 0.25, 0.05
"""The simulator check: every box that one side finds with a confidence of at least 0.3 must be
found by the other side (decoded down to 0.2) with the same class, within the `Tolerance`."""


@dataclass(frozen=True)
class Tolerance:
    """How close the simulator's matched boxes must be to ONNX Runtime's."""

    min_iou: float
    max_confidence_difference: float


FP16_TOLERANCE = Tolerance(min_iou=0.9, max_confidence_difference=0.05)
"""Float models (the NPU computes in FP16); seen here: IoU >= 0.99, confidence within 0.002."""
INT8_TOLERANCE = Tolerance(min_iou=0.7, max_confidence_difference=0.15)
"""Quantised models; seen here on a tiny model: IoU >= 0.84, confidence within 0.07."""


@dataclass(frozen=True)
class Agreement:
    """How well two sets of detections of the same images agree (see `compare_detections`)."""

    boxes: int
    """Confident boxes compared, both sides together."""
    unmatched: int
    """Confident boxes without a same-class partner of IoU >= ``min_iou`` on the other side."""
    min_iou: float
    """Worst IoU of a matched box (1.0 when nothing was compared)."""
    max_confidence_difference: float
    """Largest confidence difference of a matched pair."""

    def holds(self, tolerance: Tolerance) -> bool:
        """True when every confident box is matched within ``tolerance``."""
        return (
            self.unmatched == 0
            and self.min_iou >= tolerance.min_iou
            and self.max_confidence_difference <= tolerance.max_confidence_difference
        )

    def __str__(self) -> str:
        return (
            f"{self.boxes} confident boxes, {self.unmatched} unmatched, "
            f"worst IoU {self.min_iou:.3f}, largest confidence difference "
            f"{self.max_confidence_difference:.3f}"
        )


@dataclass(frozen=True)
class RknnExport:
    """The outcome of `export_rknn`."""

    path: Path
    metadata: ModelMetadata
    """What was written beside the model (`azaion_training.infer.metadata`)."""
    agreement: Agreement | None = None
    """The simulator against ONNX Runtime, when ``verify`` images were given."""
    simulated: np.ndarray | None = None
    """The simulator's raw ``output0`` for the ``verify`` images (letterboxed, the last batch
    filled up as `letterboxed_batch` does), when given."""

    @property
    def toolkit(self) -> str:
        """The rknn-toolkit2 version that built the model."""
        return str(self.metadata.build.get("rknn_toolkit2", ""))


def default_rknn_venv() -> Path:
    """``.venv-rknn`` at the project root (where ``scripts/setup_rknn.sh`` puts it)."""
    return PROJECT_ROOT / ".venv-rknn"


def export_rknn(
    weights: Path,
    out: Path,
    *,
    imgsz: int,
    batch: int = 1,
    platform: str = "rk3588",
    dataset: Path | None = None,
    venv: Path | None = None,
    verify: Sequence[Path] = (),
    timeout_s: float = 3600,
) -> RknnExport:
    """Exports a trained ``.pt`` to an RKNN model at ``out`` (written atomically).

    Args:
        weights: an Ultralytics detection checkpoint.
        out: the ``.rknn`` file to write.
        imgsz: square input size.
        batch: the batch size of the RKNN model.
        platform: the Rockchip target (``rk3588``).
        dataset: an image list file (`write_sample_list`): INT8 quantisation when given.
        venv: the toolkit's environment; `default_rknn_venv` when ``None``.
        verify: images to run through the simulator and ONNX Runtime; the export fails when
            their boxes disagree (`FP16_TOLERANCE`, or `INT8_TOLERANCE` with ``dataset``).
        timeout_s: longest the conversion may take.

    Raises:
        ExportError: the environment is missing, the toolkit fails, or the simulator disagrees.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".rknn-") as work:
        onnx = export_rknn_onnx(weights, Path(work) / "model.onnx", imgsz=imgsz)
        names = onnx_class_names(onnx)
        images = letterboxed_batch(verify, imgsz=imgsz, batch=batch) if verify else None
        converted = convert_onnx_to_rknn(
            onnx,
            Path(work) / "model.rknn",
            platform=platform,
            batch=batch,
            dataset=dataset,
            venv=venv or default_rknn_venv(),
            simulate=images,
            timeout_s=timeout_s,
        )
        agreement = None
        if images is not None and converted.simulated is not None:
            tolerance = INT8_TOLERANCE if dataset else FP16_TOLERANCE
            agreement = check_simulator(
                onnx, images, converted.simulated, imgsz=imgsz, tolerance=tolerance
            )
        metadata = ModelMetadata(
            imgsz=imgsz,
            batch=batch,
            names=names,
            build={
                "format": "rknn",
                "platform": platform,
                "precision": "int8" if dataset else "fp16",
                "rknn_toolkit2": converted.toolkit,
                "outputs": "raw head [batch, 4 + nc, anchors], boxes as input fractions",
            },
        )
        metadata_path(out).unlink(missing_ok=True)  # never a new model beside an old description
        atomic_move(converted.path, out)
        write_metadata(out, metadata)
    logger.info("exported %s -> %s (%s, batch %d)", weights, out, platform, batch)
    return RknnExport(
        path=out, metadata=metadata, agreement=agreement, simulated=converted.simulated
    )


def export_rknn_onnx(weights: Path, out: Path, *, imgsz: int) -> Path:
    """The ONNX rknn-toolkit2 accepts: batch 1, opset 19, raw head, boxes as input fractions.

    Output ``output0`` ``[1, 4 + nc, anchors]``; see the module docstring.
    """
    export_onnx(weights, out, imgsz=imgsz, batch=1, nms=False, opset=RKNN_OPSET, device="cpu")
    normalise_box_rows(out, imgsz=imgsz)
    return out


def normalise_box_rows(onnx_file: Path, *, imgsz: int) -> None:
    """Divides rows 0..3 (``cx, cy, w, h``) of ``output0`` by ``imgsz`` in the graph itself.

    The box rows are split off, scaled and concatenated back (as Ultralytics' ``_NormalizeCoords``
    does in torch), so the class scores pass through untouched.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(onnx_file))
    graph = model.graph
    (output,) = (o for o in graph.output if o.name == "output0")
    rows = output.type.tensor_type.shape.dim[1].dim_value
    raw = "output0_pixels"
    for node in graph.node:
        node.output[:] = [raw if name == output.name else name for name in node.output]
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([4, rows - 4], np.int64), name="output0_split"),
            numpy_helper.from_array(np.array(1 / imgsz, np.float32), name="output0_scale"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node(
                "Split", [raw, "output0_split"], ["output0_boxes", "output0_scores"], axis=1
            ),
            helper.make_node("Mul", ["output0_boxes", "output0_scale"], ["output0_fractions"]),
            helper.make_node(
                "Concat", ["output0_fractions", "output0_scores"], [output.name], axis=1
            ),
        ]
    )
    onnx.checker.check_model(model)
    atomic_write_bytes(onnx_file, model.SerializeToString())


@dataclass(frozen=True)
class Converted:
    """What the worker produced: the ``.rknn`` and, when asked, the simulator's raw outputs."""

    path: Path
    toolkit: str
    simulated: np.ndarray | None


def convert_onnx_to_rknn(
    onnx: Path,
    out: Path,
    *,
    platform: str,
    batch: int,
    venv: Path,
    dataset: Path | None = None,
    simulate: np.ndarray | None = None,
    timeout_s: float = 3600,
) -> Converted:
    """Runs ``rknn_worker.py`` in ``venv`` to convert ``onnx`` (see the worker for the protocol).

    Args:
        simulate: uint8 RGB images ``[n, h, w, 3]`` (``n`` a multiple of ``batch``) to run
            through the simulator after the build; their raw outputs come back.

    Raises:
        ExportError: the environment is missing, or the worker reports a failure.
    """
    python = venv / "bin" / "python"
    if not python.is_file():
        raise ExportError(
            f"the RKNN toolkit environment {venv} does not exist: create it with "
            f"{SETUP_SCRIPT} {venv}"
        )
    request: dict[str, object] = {
        "onnx": str(onnx),
        "out": str(out),
        "platform": platform,
        "batch": batch,
        "dataset": str(dataset) if dataset else None,
        "simulate": None,
    }
    if simulate is not None:
        inputs, outputs = out.with_suffix(".inputs.npy"), out.with_suffix(".outputs.npy")
        np.save(inputs, simulate)
        request["simulate"] = {"inputs": str(inputs), "outputs": str(outputs)}
    try:
        result = run_worker(python, request, timeout_s=timeout_s)
        simulated = np.load(outputs) if simulate is not None else None
    finally:
        if simulate is not None:
            inputs.unlink(missing_ok=True)
            outputs.unlink(missing_ok=True)
    return Converted(path=out, toolkit=str(result.get("toolkit", "")), simulated=simulated)


def run_worker(python: Path, request: dict[str, object], *, timeout_s: float) -> dict[str, object]:
    """Sends ``request`` to the worker and returns its result.

    Raises:
        ExportError: the worker timed out, failed, or did not answer in the protocol.
    """
    try:
        finished = subprocess.run(  # noqa: S603 (our own worker, run by a known interpreter)
            [str(python), "-I", str(WORKER)],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ExportError(f"RKNN conversion took longer than {timeout_s:.0f} s") from exc
    except OSError as exc:
        raise ExportError(f"cannot start the RKNN worker with {python}: {exc}") from exc
    logger.debug("rknn-toolkit2 log:\n%s", finished.stderr)
    lines = finished.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict):
        tail = " | ".join(finished.stderr.strip().splitlines()[-3:])
        raise ExportError(
            f"the RKNN worker exited with {finished.returncode} without a result: {tail}"
        )
    if finished.returncode != 0 or not result.get("ok"):
        raise ExportError(
            f"RKNN conversion failed at {result.get('stage')} (exit {finished.returncode}): "
            f"{result.get('error')}"
        )
    return result


def letterboxed_batch(images: Sequence[Path], *, imgsz: int, batch: int) -> np.ndarray:
    """uint8 RGB ``[n, imgsz, imgsz, 3]``: the images letterboxed, the last batch filled up by
    repeating the last image so that ``n`` is a multiple of ``batch``."""
    from azaion_training.export.sample import load_letterboxed

    loaded = [load_letterboxed(path, imgsz) for path in images]
    loaded += [loaded[-1]] * (-len(loaded) % batch)
    return np.stack(loaded)


def check_simulator(
    onnx: Path, images: np.ndarray, simulated: np.ndarray, *, imgsz: int, tolerance: Tolerance
) -> Agreement:
    """Compares the simulator's boxes with ONNX Runtime's on the same images.

    Args:
        onnx: the ONNX the RKNN model was built from.
        images: uint8 RGB ``[n, imgsz, imgsz, 3]``.
        simulated: the simulator's ``output0`` for ``images``.

    Raises:
        ExportError: they disagree beyond ``tolerance``.
    """
    reference = onnx_runtime_outputs(onnx, images)
    low = CONFIDENCE - MARGIN
    agreement = compare_detections(
        decode_predictions(reference, imgsz=imgsz, conf=low),
        decode_predictions(simulated, imgsz=imgsz, conf=low),
        confident=CONFIDENCE + MARGIN,
    )
    logger.info("RKNN simulator against ONNX Runtime on %d images: %s", len(images), agreement)
    if not agreement.holds(tolerance):
        raise ExportError(f"the RKNN simulator disagrees with ONNX Runtime: {agreement}")
    return agreement


def onnx_runtime_outputs(onnx: Path, images: np.ndarray) -> np.ndarray:
    """``output0`` ``[n, 4 + nc, anchors]`` of a batch-1 ONNX for uint8 RGB ``[n, h, w, 3]``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    tensors = images.transpose(0, 3, 1, 2).astype(np.float32) / 255
    return np.concatenate([session.run(["output0"], {"images": t[None]})[0] for t in tensors])


def compare_detections(
    reference: Sequence[np.ndarray],
    candidate: Sequence[np.ndarray],
    *,
    confident: float,
    match_iou: float = 0.5,
) -> Agreement:
    """How well two detectors agree on the same images (symmetric).

    Every box of either side with confidence >= ``confident`` looks for the box of the same class
    on the other side (at any confidence the other side kept) with the highest IoU; below
    ``match_iou`` it counts as unmatched (another object), else its IoU and confidence difference
    enter the worst cases.

    Args:
        reference: per image ``(k, 6)`` ``x1, y1, x2, y2, confidence, class``.
        candidate: the same for the other detector.
        confident: the confidence from which a box must be found by the other side.
        match_iou: the least IoU of two boxes taken for the same object.
    """
    if len(reference) != len(candidate):
        raise ValueError(f"{len(reference)} images against {len(candidate)}")
    boxes = unmatched = 0
    worst_iou, worst_confidence = 1.0, 0.0
    for one, other in zip(reference, candidate, strict=True):
        for mine, theirs in ((one, other), (other, one)):
            for box in mine[mine[:, 4] >= confident]:
                boxes += 1
                (index,), (overlap,) = match_by_class(
                    box[None, :4], box[5:], theirs[:, :4], theirs[:, 5]
                )
                if index < 0 or overlap < match_iou:
                    unmatched += 1
                    continue
                worst_iou = min(worst_iou, float(overlap))
                worst_confidence = max(worst_confidence, abs(float(theirs[index, 4] - box[4])))
    return Agreement(boxes, unmatched, worst_iou, worst_confidence)

"""Converts an ONNX model to RKNN inside the rknn-toolkit2 environment (run as a file).

This script runs under the Python of the RKNN environment (``scripts/setup_rknn.sh``), which has
``rknn-toolkit2`` and numpy but not `azaion_training`, so it imports only the standard library,
numpy and ``rknn``. `azaion_training.export.rknn` drives it.

Protocol:
    stdin   one JSON request:
            {"onnx": PATH, "out": PATH, "platform": "rk3588", "batch": 1,
             "dataset": PATH | null,        # image list file: INT8 quantisation when given
             "simulate": {"inputs": PATH.npy, "outputs": PATH.npy} | null}
            ``simulate.inputs`` holds uint8 RGB images ``[n, h, w, 3]`` (n a multiple of batch);
            the simulator's raw outputs ``[n, ...]`` are saved to ``simulate.outputs``.
    stdout  one JSON result, and nothing else (the toolkit's own log goes to stderr):
            {"ok": true, "toolkit": VERSION, "rknn": PATH} or
            {"ok": false, "stage": STAGE, "error": MESSAGE}
    exit    0 converted; 1 the toolkit failed at ``stage``; 2 bad request; 3 no toolkit here.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

EXIT_OK, EXIT_FAILED, EXIT_BAD_REQUEST, EXIT_NO_TOOLKIT = 0, 1, 2, 3
REQUIRED = ("onnx", "out", "platform", "batch")


class StageError(Exception):
    """A toolkit call failed; ``stage`` names it."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


def main() -> int:
    result_stream = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # everything else printed (the toolkit's log) goes to stderr
    try:
        request = json.loads(sys.stdin.read())
        missing = [key for key in REQUIRED if key not in request]
        if missing:
            raise ValueError(f"request lacks {', '.join(missing)}")
    except ValueError as exc:
        return answer(result_stream, EXIT_BAD_REQUEST, stage="request", error=str(exc))
    try:
        from rknn.api import RKNN
    except Exception as exc:  # the toolkit raises more than ImportError when its deps are off
        return answer(result_stream, EXIT_NO_TOOLKIT, stage="import", error=repr(exc))
    try:
        version = convert(RKNN, request)
    except StageError as exc:
        traceback.print_exc()
        return answer(result_stream, EXIT_FAILED, stage=exc.stage, error=str(exc))
    return answer(result_stream, EXIT_OK, toolkit=version, rknn=request["out"])


def convert(rknn_class: type, request: dict) -> str:
    """Builds, exports and optionally simulates the model; returns the toolkit version."""
    rknn = rknn_class(verbose=False)
    try:
        call(
            "config",
            rknn.config,
            mean_values=[[0, 0, 0]],
            std_values=[[255, 255, 255]],
            target_platform=request["platform"],
        )
        call("load_onnx", rknn.load_onnx, model=request["onnx"])
        dataset = request.get("dataset")
        call(
            "build",
            rknn.build,
            do_quantization=dataset is not None,
            dataset=dataset,
            rknn_batch_size=int(request["batch"]),
        )
        call("export_rknn", rknn.export_rknn, request["out"])
        if request.get("simulate"):
            simulate(rknn, request["simulate"], batch=int(request["batch"]))
        return toolkit_version()
    finally:
        rknn.release()


def simulate(rknn: object, files: dict, *, batch: int) -> None:
    """Runs the just-built model in the simulator on ``files["inputs"]``; saves the outputs."""
    import numpy as np

    call("init_runtime", rknn.init_runtime)
    images = np.load(files["inputs"])
    outputs = []
    for start in range(0, len(images), batch):
        try:
            result = rknn.inference(inputs=[images[start : start + batch]], data_format="nhwc")
        except Exception as exc:
            raise StageError("inference", repr(exc)) from exc
        if result is None:
            raise StageError("inference", "the simulator returned no outputs")
        outputs.append(np.asarray(result[0], dtype=np.float32))
    np.save(files["outputs"], np.concatenate(outputs))


def call(stage: str, function: object, *args: object, **kwargs: object) -> None:
    """Calls a toolkit function, which reports failure by a non-zero code or by raising."""
    try:
        code = function(*args, **kwargs)
    except Exception as exc:
        raise StageError(stage, " ".join(str(exc).split())[-500:] or repr(exc)) from exc
    if code not in (0, None):
        raise StageError(stage, f"rknn.{stage} returned {code} (its log is above)")


def toolkit_version() -> str:
    """The installed rknn-toolkit2 version."""
    from importlib.metadata import version

    return version("rknn-toolkit2")


def answer(stream: object, code: int, **fields: object) -> int:
    """Writes the one JSON result line and returns the exit code."""
    stream.write(json.dumps({"ok": code == EXIT_OK, **fields}) + "\n")
    stream.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())

"""Video inference: engines behind one interface, letterboxing, overlap removal, the pipeline.

engine.py       `Engine` (the interface) and the checks every engine shares
load.py         the engine table: `load_engine` / `open_engine` by file type
onnx.py         ONNX Runtime         tensorrt.py   TensorRT         rknn.py   RKNN (board)
preprocess.py   `Letterbox` as Ultralytics does it, and back       (pure)
postprocess.py  `Detections`, confidence threshold, overlap removal (pure)
tiles.py        `TilePlan`: frames cut into tiles at native resolution, boxes merged back
frames.py       `detect_frames` (still frames), `Packer` / `Assembler` (batching, shared)
video.py        frame sampling, reader / writer threads, `VideoDetection`
annotate.py     drawing detections
runner.py       `infer_video`: detections.jsonl, annotated.mp4, summary.json
"""

from azaion_training.infer.engine import Engine
from azaion_training.infer.load import engine_kind, load_engine, open_engine
from azaion_training.infer.postprocess import Detections, postprocess, remove_overlaps
from azaion_training.infer.preprocess import Letterbox, to_input
from azaion_training.infer.runner import InferSummary, infer_video
from azaion_training.infer.tiles import TilePlan
from azaion_training.infer.video import FrameResult, VideoDetection

__all__ = [
    "Detections",
    "Engine",
    "FrameResult",
    "InferSummary",
    "Letterbox",
    "TilePlan",
    "VideoDetection",
    "engine_kind",
    "infer_video",
    "load_engine",
    "open_engine",
    "postprocess",
    "remove_overlaps",
    "to_input",
]

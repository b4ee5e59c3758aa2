"""The train tests load the inference tests' detector (the root conftest provides `detector`)."""

from tests.infer.conftest import onnx_engine

__all__ = ["onnx_engine"]

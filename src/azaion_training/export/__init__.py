"""Model export: ONNX (`onnx`), TensorRT engines and RKNN models.

Heavy libraries (ultralytics, tensorrt, the RKNN toolkit) are imported inside the functions.
"""

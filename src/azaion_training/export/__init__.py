"""Model export: ONNX (`onnx`), TensorRT engines (`tensorrt`) and RKNN models (`rknn`).

`dispatch.export_model` drives all three for ``azaion-export``; `sample` draws calibration images;
`rknn_worker` is a script run inside the RKNN toolkit's own environment, never imported.

Heavy libraries (ultralytics, tensorrt, the RKNN toolkit) are imported inside the functions.
"""

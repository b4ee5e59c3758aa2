"""Model export: ONNX (`onnx`), TensorRT engines (`tensorrt`, format ``engine``) and RKNN models
(`rknn`).

`dispatch.export_model` drives them for ``azaion-export`` through its table of formats
(`dispatch.EXPORT_FORMATS`); `sample` draws calibration images; `rknn_worker` is a script run inside
the RKNN toolkit's own environment (importing it only defines functions).

Heavy libraries (ultralytics, tensorrt, the RKNN toolkit) are imported inside the functions.
"""

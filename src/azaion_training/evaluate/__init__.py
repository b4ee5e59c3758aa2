"""Scoring a model as it is deployed: the exported model through the engine and pre/post
processing of ``azaion-infer``, on the full frames of a dataset split, by class and by object
size (AI-TOD buckets), with COCO's AP (faster-coco-eval) and precision/recall/F1 at the deployed
confidence.

Modules: `sizes` (the buckets), `split` (a split's images and truth), `coco` (COCO AP),
`matching` (P/R/F1, curves, confusion), `scores` (the JSON result), `run` (`evaluate_model`),
`model` (a model file or store name in, scores out).
"""

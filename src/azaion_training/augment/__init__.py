"""Augmentation: every annotation in ``data/`` becomes 8 samples in ``data-processed/``.

Modules, from the bottom up: `functional` (pure box and seed helpers), `pipeline` (the seeded
Albumentations Compose of SPEC section 6), `state` (stamps of augmented sources), `plan` (change
detection), `corrupted` (rejecting an annotation with its reason), `worker` (the samples of one
annotation) and `runner` (the pass, the process pool and the daemon loop).
"""

from azaion_training.augment.pipeline import augment, build_pipeline, default_transforms
from azaion_training.augment.runner import Augmenter, PassSummary, augment_tree, stop_on_signals

__all__ = [
    "Augmenter",
    "PassSummary",
    "augment",
    "augment_tree",
    "build_pipeline",
    "default_transforms",
    "stop_on_signals",
]

"""Datasets: forming a dated train/valid/test dataset from the augmented samples (`formation`)."""

from azaion_training.dataset.formation import (
    SPLITS,
    FormedDataset,
    SplitCounts,
    assign_splits,
    form_dataset,
)

__all__ = ["SPLITS", "FormedDataset", "SplitCounts", "assign_splits", "form_dataset"]

"""Datasets: the split ledger (`ledger`) and forming a dated train/valid/test dataset from the
augmented samples (`formation`)."""

from azaion_training.dataset.formation import (
    FormedDataset,
    SplitCounts,
    form_dataset,
    read_manifest,
)
from azaion_training.dataset.ledger import SPLITS, SplitLedger, bucket

__all__ = [
    "SPLITS",
    "FormedDataset",
    "SplitCounts",
    "SplitLedger",
    "bucket",
    "form_dataset",
    "read_manifest",
]

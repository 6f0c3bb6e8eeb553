"""Dataset steps: ``dataset/csv`` and ``dataset/generic``."""

from ._dataset import AsyncDataset, Dataset
from .csv import AsyncDatasetCsv, DatasetCsv
from .generic import AsyncDatasetGeneric, DatasetGeneric

__all__ = [
    "AsyncDataset",
    "AsyncDatasetCsv",
    "AsyncDatasetGeneric",
    "Dataset",
    "DatasetCsv",
    "DatasetGeneric",
]

"""`DatasetCsv`: CSV datasets, parsed by the server into typed tables (``dataset/csv``)."""

from __future__ import annotations

from ._dataset import AsyncDataset, Dataset


class DatasetCsv(Dataset):
    """CSV datasets (blocking client).

    Example:
        >>> dataset_csv = DatasetCsv("http://34.66.75.31")
        >>> dataset_csv.insert_dataset_sync("titanic", url="https://example.org/train.csv")
        {'result': '/api/learningOrchestra/v1/dataset/csv/titanic'}
    """

    API_PATH = "/dataset/csv"


class AsyncDatasetCsv(AsyncDataset):
    """CSV datasets (asyncio client)."""

    API_PATH = "/dataset/csv"

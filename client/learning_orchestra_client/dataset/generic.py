"""`DatasetGeneric`: any file, stored as it is (``dataset/generic``).

Other steps reference it as ``"$name"`` and receive an open binary file.
"""

from __future__ import annotations

from ._dataset import AsyncDataset, Dataset


class DatasetGeneric(Dataset):
    """Generic (raw file) datasets (blocking client)."""

    API_PATH = "/dataset/generic"


class AsyncDatasetGeneric(AsyncDataset):
    """Generic (raw file) datasets (asyncio client)."""

    API_PATH = "/dataset/generic"

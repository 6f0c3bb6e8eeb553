"""`Dataset`: the operations shared by ``dataset/csv`` and ``dataset/generic``.

Method names, parameter names, defaults and return values are those of the original LO
client's ``learning_orchestra_client.dataset._dataset.Dataset``: a method that returns the
server's answer returns the whole parsed JSON object (``{"result": ...}``), or with
``pretty_response=True`` that object as an indented JSON string. Uploads of local files
(``file=``) and the asyncio twin `AsyncDataset` are additions.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
from collections.abc import Iterator
from typing import IO, Any

import httpx

from .._step import StepPlans
from .._transport import (
    DEFAULT_LONG_POLL,
    DEFAULT_TIMEOUT,
    AsyncService,
    Plan,
    Request,
    SyncService,
    answer_of,
    treat,
)
from ..observe._plans import wait_plan

#: What `file=` accepts: a path, an open binary file, or the bytes themselves.
FileSource = str | os.PathLike[str] | IO[bytes] | bytes

_DATASET_NAME = "datasetName"
_URL = "datasetURI"


@contextlib.contextmanager
def _upload(file: FileSource, dataset_name: str) -> Iterator[tuple[str, Any, str]]:
    """The ``(filename, content, content type)`` triple of the multipart `file` field."""
    if isinstance(file, bytes):
        yield dataset_name, file, "application/octet-stream"
        return
    if isinstance(file, str | os.PathLike):
        path = os.fspath(file)
        with open(path, "rb") as handle:
            yield _described(os.path.basename(path), handle)
        return
    filename = os.path.basename(str(getattr(file, "name", "") or dataset_name))
    yield _described(filename, file)


def _described(filename: str, content: Any) -> tuple[str, Any, str]:
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return filename, content, content_type


class _DatasetPlans(StepPlans):
    """Builds the plans of every dataset operation, for `Dataset` and `AsyncDataset`."""

    def _insert(
        self, dataset_name: str, url: str | None, file: FileSource | None
    ) -> Plan[dict[str, Any]]:
        if (url is None) == (file is None):
            raise ValueError("give exactly one of url (a http/https URL) and file (a local file)")
        if url is not None:
            response = yield Request(
                "POST", self.api_path, json={_DATASET_NAME: dataset_name, _URL: url}
            )
        else:
            assert file is not None
            with _upload(file, dataset_name) as triple:
                response = yield Request(
                    "POST",
                    self.api_path,
                    data={_DATASET_NAME: dataset_name},
                    files={"file": triple},
                )
        return answer_of(response)

    def _insert_and_wait(
        self,
        dataset_name: str,
        url: str | None,
        file: FileSource | None,
        timeout: float | None,
    ) -> Plan[dict[str, Any]]:
        envelope = yield from self._insert(dataset_name, url, file)
        yield from wait_plan(dataset_name, timeout, self._long_poll)
        return envelope


class Dataset(_DatasetPlans, SyncService):
    """Datasets of one step type (blocking client); use `DatasetCsv` or `DatasetGeneric`.

    Args:
        cluster_ip: the cluster's address, e.g. ``"http://34.66.75.31"`` or ``"host:8080"``.
        api_path: the step type's route, e.g. ``"/dataset/csv"`` (subclasses set it).
        token, timeout, long_poll, client: see `SyncService`.
    """

    def __init__(
        self,
        cluster_ip: str,
        api_path: str | None = None,
        *,
        token: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        long_poll: float = DEFAULT_LONG_POLL,
        client: httpx.Client | None = None,
    ) -> None:
        self._set_api_path(api_path)
        super().__init__(
            cluster_ip, token=token, timeout=timeout, long_poll=long_poll, client=client
        )

    def insert_dataset_sync(
        self,
        dataset_name: str,
        url: str | None = None,
        pretty_response: bool = False,
        *,
        file: FileSource | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Insert a dataset and block until the server has stored it.

        Give either `url` (the server downloads it) or `file` (uploaded from here).

        Args:
            dataset_name: name of the new dataset (letters, digits, ``_`` and ``-``).
            url: http/https URL of the file.
            pretty_response: return the answer as an indented JSON string.
            file: a local path, an open binary file or bytes, sent as multipart upload.
            timeout: overall seconds to wait for the ingestion; None for no limit.

        Returns:
            The server's whole answer to the POST, as LO returned it:
            ``{"result": "/api/learningOrchestra/v1/dataset/csv/<name>"}`` (the dataset's
            URL path), or that answer as an indented JSON string with `pretty_response`.

        Raises:
            StepFailed: the ingestion failed (``exc.exception`` says why).
            WaitTimeout: it did not end within `timeout` seconds.
            Conflict, InvalidRequest, ...: the server refused the request.
        """
        envelope = self._run(self._insert_and_wait(dataset_name, url, file, timeout))
        return treat(envelope, pretty_response)

    def insert_dataset_async(
        self,
        dataset_name: str,
        url: str | None = None,
        pretty_response: bool = False,
        *,
        file: FileSource | None = None,
    ) -> Any:
        """Start inserting a dataset and return at once (call `wait` to block on it).

        Arguments as in `insert_dataset_sync`. Returns the server's whole answer,
        ``{"result": "<the dataset's URL path>"}`` (a JSON string with `pretty_response`).
        """
        envelope = self._run(self._insert(dataset_name, url, file))
        return treat(envelope, pretty_response)

    def search_all_datasets(
        self, pretty_response: bool = False, skip: int = 0, limit: int | None = None
    ) -> Any:
        """The metadata of every dataset of this type (not their content).

        Args:
            pretty_response: return an indented JSON string.
            skip: how many datasets to skip.
            limit: how many to return at most (None: the server's default).

        Returns:
            The server's whole answer, ``{"result": [metadata, ...]}``.
        """
        return treat(self._run(self._search_all(skip, limit)), pretty_response)

    def search_dataset_content(
        self,
        dataset_name: str,
        query: dict[str, Any] | str | None = None,
        limit: int = 10,
        skip: int = 0,
        pretty_response: bool = False,
    ) -> Any:
        """A page of a dataset: its metadata document first, then rows.

        `skip` and `limit` apply to that combined list, as in LO (``skip=1`` skips the
        metadata). The server caps `limit` at 100.

        Args:
            dataset_name: the dataset's name.
            query: a filter over rows in MongoDB syntax, e.g. ``{"Sex": "female"}`` or
                ``{"Age": {"$gt": 30}}`` (operators: ``$eq $ne $gt $gte $lt $lte $in
                $nin $exists $and $or``); a dict or a JSON string.
            limit: how many items to return.
            skip: how many items to skip.
            pretty_response: return an indented JSON string.

        Returns:
            The server's whole answer, ``{"result": [metadata, row, row, ...]}``.
        """
        envelope = self._run(self._search_content(dataset_name, query, limit, skip))
        return treat(envelope, pretty_response)

    def delete_dataset(self, dataset_name: str, pretty_response: bool = False) -> Any:
        """Delete a dataset (cancelling its ingestion if it is still running).

        Returns the server's whole answer, ``{"result": "<a one-line message>"}``.
        """
        return treat(self._run(self._delete(dataset_name)), pretty_response)

    #: LO's name for `delete_dataset`.
    delete_dataset_async = delete_dataset

    def wait(self, dataset_name: str, timeout: float | None = None) -> dict[str, Any]:
        """Block until the dataset is stored; return its metadata (see `Observer.wait`).

        As in LO, the return value is the metadata dict itself, not ``{"result": ...}``.
        """
        return self._run(wait_plan(dataset_name, timeout, self._long_poll))


class AsyncDataset(_DatasetPlans, AsyncService):
    """The asyncio twin of `Dataset`: the same methods, to be awaited."""

    def __init__(
        self,
        cluster_ip: str,
        api_path: str | None = None,
        *,
        token: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        long_poll: float = DEFAULT_LONG_POLL,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._set_api_path(api_path)
        super().__init__(
            cluster_ip, token=token, timeout=timeout, long_poll=long_poll, client=client
        )

    async def insert_dataset_sync(
        self,
        dataset_name: str,
        url: str | None = None,
        pretty_response: bool = False,
        *,
        file: FileSource | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Insert a dataset and wait until it is stored; see `Dataset.insert_dataset_sync`."""
        envelope = await self._run(self._insert_and_wait(dataset_name, url, file, timeout))
        return treat(envelope, pretty_response)

    async def insert_dataset_async(
        self,
        dataset_name: str,
        url: str | None = None,
        pretty_response: bool = False,
        *,
        file: FileSource | None = None,
    ) -> Any:
        """Start inserting a dataset; see `Dataset.insert_dataset_async`."""
        envelope = await self._run(self._insert(dataset_name, url, file))
        return treat(envelope, pretty_response)

    async def search_all_datasets(
        self, pretty_response: bool = False, skip: int = 0, limit: int | None = None
    ) -> Any:
        """Metadata of every dataset of this type; see `Dataset.search_all_datasets`."""
        return treat(await self._run(self._search_all(skip, limit)), pretty_response)

    async def search_dataset_content(
        self,
        dataset_name: str,
        query: dict[str, Any] | str | None = None,
        limit: int = 10,
        skip: int = 0,
        pretty_response: bool = False,
    ) -> Any:
        """A page of a dataset; see `Dataset.search_dataset_content`."""
        envelope = await self._run(self._search_content(dataset_name, query, limit, skip))
        return treat(envelope, pretty_response)

    async def delete_dataset(self, dataset_name: str, pretty_response: bool = False) -> Any:
        """Delete a dataset; see `Dataset.delete_dataset`."""
        return treat(await self._run(self._delete(dataset_name)), pretty_response)

    #: LO's name for `delete_dataset`.
    delete_dataset_async = delete_dataset

    async def wait(self, dataset_name: str, timeout: float | None = None) -> dict[str, Any]:
        """Wait until the dataset is stored; see `Dataset.wait`."""
        return await self._run(wait_plan(dataset_name, timeout, self._long_poll))

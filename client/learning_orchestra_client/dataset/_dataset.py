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

from .._service import AsyncService, SyncService, operation
from .._step import StepPlans
from .._transport import Plan, Request

#: What `file=` accepts: a path, an open binary file, or the bytes themselves.
FileSource = str | os.PathLike[str] | IO[bytes] | bytes


@contextlib.contextmanager
def upload_field(file: FileSource, filename: str) -> Iterator[tuple[str, Any, str]]:
    """The ``(filename, content, content type)`` triple of a multipart `file` field;
    `filename` is used when `file` does not carry a name of its own."""
    if isinstance(file, bytes):
        yield filename, file, "application/octet-stream"
        return
    if isinstance(file, str | os.PathLike):
        path = os.fspath(file)
        with open(path, "rb") as handle:
            yield _described(os.path.basename(path), handle)
        return
    yield _described(os.path.basename(str(getattr(file, "name", "") or filename)), file)


def _described(filename: str, content: Any) -> tuple[str, Any, str]:
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return filename, content, content_type


def insert_plan(
    api_path: str,
    dataset_name: str,
    url: str | None,
    file: FileSource | None,
    extra: dict[str, Any] | None = None,
) -> Plan[Any]:
    """POST a dataset from `url` (the server downloads it) or `file` (uploaded from here),
    with `extra` body fields (``description``); the raw `httpx.Response`."""
    if (url is None) == (file is None):
        raise ValueError("give exactly one of url (a http/https URL) and file (a local file)")
    if url is not None:
        return (
            yield Request("POST", api_path, json={"datasetName": dataset_name, "datasetURI": url})
        )
    assert file is not None
    with upload_field(file, dataset_name) as field:
        return (
            yield Request(
                "POST",
                api_path,
                data={"datasetName": dataset_name, **(extra or {})},
                files={"file": field},
            )
        )


class _Datasets(StepPlans):
    """The dataset family, declared once for `Dataset` and `AsyncDataset`."""

    @operation
    def insert_dataset_sync(
        self,
        dataset_name: str,
        url: str | None = None,
        pretty_response: bool = False,
        *,
        file: FileSource | None = None,
        timeout: float | None = None,
    ) -> Plan[Any]:
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
        response = yield from insert_plan(self.api_path, dataset_name, url, file)
        return (yield from self._settle(response, dataset_name, pretty_response, timeout))

    insert_dataset_async = insert_dataset_sync.starting(
        """Start inserting a dataset and return at once (call `wait` to block on it).

        Arguments as in `insert_dataset_sync`. Returns the server's whole answer,
        ``{"result": "<the dataset's URL path>"}`` (a JSON string with `pretty_response`)."""
    )

    search_all_datasets = StepPlans.search_all

    @operation
    def search_dataset_content(
        self,
        dataset_name: str,
        query: dict[str, Any] | str | None = None,
        limit: int = 10,
        skip: int = 0,
        pretty_response: bool = False,
    ) -> Plan[Any]:
        """A page of a dataset: ``{"result": [metadata, row, row, ...]}``.

        `skip` and `limit` apply to that combined list, as in LO (``skip=1`` skips the
        metadata); the server caps `limit` at 100. `query` filters rows in MongoDB syntax,
        e.g. ``{"Sex": "female"}`` or ``{"Age": {"$gt": 30}}`` (operators: ``$eq $ne $gt
        $gte $lt $lte $in $nin $exists $and $or``), as a dict or a JSON string.
        """
        return self._search_content(dataset_name, query, limit, skip, pretty_response)

    @operation
    def delete_dataset(self, dataset_name: str, pretty_response: bool = False) -> Plan[Any]:
        """Delete a dataset (cancelling its ingestion if it is still running):
        ``{"result": "<a one-line message>"}``."""
        return self._delete(dataset_name, pretty_response)

    #: LO's name for `delete_dataset`.
    delete_dataset_async = delete_dataset

    @operation
    def wait(self, dataset_name: str, timeout: float | None = None) -> Plan[dict[str, Any]]:
        """Block until the dataset is stored and return its metadata (LO's ``wait``).

        As in LO, this waits as long as the ingestion takes: `timeout` is how long each
        poll lasts, not a limit (use `Orchestra.step(name).wait(timeout=...)` for a
        deadline). Raises `StepFailed` when the ingestion failed.
        """
        return self._wait(dataset_name, timeout)


class Dataset(_Datasets, SyncService):
    """Datasets of one step type (blocking client); use `DatasetCsv` or `DatasetGeneric`.

    Args:
        cluster_ip: the cluster's address, e.g. ``"http://34.66.75.31"`` or ``"host:8080"``.
        api_path: the step type's route, e.g. ``"/dataset/csv"`` (subclasses set it).
        token, timeout, long_poll, client, retries: keyword-only, see `SyncService`.
    """


class AsyncDataset(_Datasets, AsyncService):
    """The asyncio twin of `Dataset`: the same methods, to be awaited."""

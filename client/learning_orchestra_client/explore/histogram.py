"""`ExploreHistogram`: value counts of a table's columns (``explore/histogram``).

Method names, parameters and return values are those of the original LO client's
``learning_orchestra_client.explore.histogram.ExploreHistogram``; ``wait`` and the asyncio
twin `AsyncExploreHistogram` are additions. A histogram is a table of rows
``{"field", "value", "count"}``.
"""

from __future__ import annotations

from typing import Any

from .._step import StepPlans, table_step_body
from .._transport import AsyncService, SyncService, treat


class _HistogramPlans(StepPlans):
    API_PATH = "/explore/histogram"


class ExploreHistogram(_HistogramPlans, SyncService):
    """Histograms (blocking client).

    Example:
        >>> histogram = ExploreHistogram("http://34.66.75.31")
        >>> histogram.run_histogram_sync("titanic", "titanic_histogram", ["Sex", "Embarked"])
        {'result': '/api/learningOrchestra/v1/explore/histogram/titanic_histogram'}
        >>> histogram.search_histogram_content("titanic_histogram", skip=1)["result"][0]
        {'field': 'Sex', 'value': 'female', 'count': 314}
    """

    def run_histogram_sync(
        self,
        dataset_name: str,
        histogram_name: str,
        fields: list[str],
        pretty_response: bool = False,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Count the values of `fields` in `dataset_name` and block until it is stored.

        Returns the server's whole answer to the POST, ``{"result": "<the histogram's URL
        path>"}``. Raises `StepFailed` when the histogram fails, `InvalidRequest` for a
        column the dataset does not have.
        """
        body = table_step_body(dataset_name, histogram_name, fields)
        plan = self._send_and_wait("POST", self.api_path, body, histogram_name, timeout)
        return treat(self._run(plan), pretty_response)

    def run_histogram_async(
        self,
        dataset_name: str,
        histogram_name: str,
        fields: list[str],
        pretty_response: bool = False,
    ) -> Any:
        """Start a histogram and return at once (call `wait` to block on it)."""
        body = table_step_body(dataset_name, histogram_name, fields)
        return treat(self._run(self._send("POST", self.api_path, body)), pretty_response)

    def search_all_histograms(
        self, pretty_response: bool = False, skip: int = 0, limit: int | None = None
    ) -> Any:
        """The metadata of every histogram: ``{"result": [metadata, ...]}``."""
        return treat(self._run(self._search_all(skip, limit)), pretty_response)

    def search_histogram_content(
        self,
        histogram_name: str,
        query: dict[str, Any] | str | None = None,
        limit: int = 10,
        skip: int = 0,
        pretty_response: bool = False,
    ) -> Any:
        """A page of a histogram: ``{"result": [metadata, {field, value, count}, ...]}``."""
        plan = self._search_content(histogram_name, query, limit, skip)
        return treat(self._run(plan), pretty_response)

    def delete_histogram(self, histogram_name: str, pretty_response: bool = False) -> Any:
        """Delete a histogram: ``{"result": "<a one-line message>"}``."""
        return treat(self._run(self._delete(histogram_name)), pretty_response)

    def wait(self, histogram_name: str, timeout: float | None = None) -> dict[str, Any]:
        """Block until the histogram is stored; its metadata (see `Observer.wait`)."""
        return self._run(self._wait(histogram_name, timeout))


class AsyncExploreHistogram(_HistogramPlans, AsyncService):
    """The asyncio twin of `ExploreHistogram`: the same methods, to be awaited."""

    async def run_histogram_sync(
        self,
        dataset_name: str,
        histogram_name: str,
        fields: list[str],
        pretty_response: bool = False,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Count values and wait until the histogram is stored; see `ExploreHistogram`."""
        body = table_step_body(dataset_name, histogram_name, fields)
        plan = self._send_and_wait("POST", self.api_path, body, histogram_name, timeout)
        return treat(await self._run(plan), pretty_response)

    async def run_histogram_async(
        self,
        dataset_name: str,
        histogram_name: str,
        fields: list[str],
        pretty_response: bool = False,
    ) -> Any:
        """Start a histogram; see `ExploreHistogram.run_histogram_async`."""
        body = table_step_body(dataset_name, histogram_name, fields)
        return treat(await self._run(self._send("POST", self.api_path, body)), pretty_response)

    async def search_all_histograms(
        self, pretty_response: bool = False, skip: int = 0, limit: int | None = None
    ) -> Any:
        """The metadata of every histogram."""
        return treat(await self._run(self._search_all(skip, limit)), pretty_response)

    async def search_histogram_content(
        self,
        histogram_name: str,
        query: dict[str, Any] | str | None = None,
        limit: int = 10,
        skip: int = 0,
        pretty_response: bool = False,
    ) -> Any:
        """A page of a histogram; see `ExploreHistogram.search_histogram_content`."""
        plan = self._search_content(histogram_name, query, limit, skip)
        return treat(await self._run(plan), pretty_response)

    async def delete_histogram(self, histogram_name: str, pretty_response: bool = False) -> Any:
        """Delete a histogram."""
        return treat(await self._run(self._delete(histogram_name)), pretty_response)

    async def wait(self, histogram_name: str, timeout: float | None = None) -> dict[str, Any]:
        """Wait until the histogram is stored; its metadata."""
        return await self._run(self._wait(histogram_name, timeout))

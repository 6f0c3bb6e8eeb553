"""`ExploreHistogram`: value counts of a table's columns (``explore/histogram``).

Method names, parameters and return values are those of the original LO client's
``learning_orchestra_client.explore.histogram.ExploreHistogram``; ``wait`` and the asyncio
twin `AsyncExploreHistogram` are additions. A histogram is a table of rows
``{"field", "value", "count"}``.
"""

from __future__ import annotations

from typing import Any

from .._service import AsyncService, SyncService, operation
from .._step import StepPlans, table_step_body
from .._transport import Plan


class _Histograms(StepPlans):
    API_PATH = "/explore/histogram"

    @operation
    def run_histogram_sync(
        self,
        dataset_name: str,
        histogram_name: str,
        fields: list[str],
        pretty_response: bool = False,
        *,
        timeout: float | None = None,
    ) -> Plan[Any]:
        """Count the values of `fields` in `dataset_name` and block until it is stored.

        Returns the server's whole answer to the POST, ``{"result": "<the histogram's URL
        path>"}``. Raises `StepFailed` when the histogram fails, `InvalidRequest` for a
        column the dataset does not have. `timeout`: overall seconds; None for no limit.
        """
        body = table_step_body(dataset_name, histogram_name, fields)
        return self._submit(body, histogram_name, pretty_response, timeout)

    run_histogram_async = run_histogram_sync.starting(
        """Start a histogram and return at once (call `wait` to block on it)."""
    )

    search_all_histograms = StepPlans.search_all

    @operation
    def search_histogram_content(
        self,
        histogram_name: str,
        query: dict[str, Any] | str | None = None,
        limit: int = 10,
        skip: int = 0,
        pretty_response: bool = False,
    ) -> Plan[Any]:
        """A page of a histogram: ``{"result": [metadata, {field, value, count}, ...]}``."""
        return self._search_content(histogram_name, query, limit, skip, pretty_response)

    @operation
    def delete_histogram(self, histogram_name: str, pretty_response: bool = False) -> Plan[Any]:
        """Delete a histogram: ``{"result": "<a one-line message>"}``."""
        return self._delete(histogram_name, pretty_response)

    @operation
    def wait(self, histogram_name: str, timeout: float | None = None) -> Plan[dict[str, Any]]:
        """Block until the histogram is stored; its metadata (LO's wait: `timeout` is the
        poll interval, see `Observer.wait`)."""
        return self._wait(histogram_name, timeout)


class ExploreHistogram(_Histograms, SyncService):
    """Histograms (blocking client).

    Example:
        >>> histogram = ExploreHistogram("http://34.66.75.31")
        >>> histogram.run_histogram_sync("titanic", "titanic_histogram", ["Sex", "Embarked"])
        {'result': '/api/learningOrchestra/v1/explore/histogram/titanic_histogram'}
        >>> histogram.search_histogram_content("titanic_histogram", skip=1)["result"][0]
        {'field': 'Sex', 'value': 'female', 'count': 314}
    """


class AsyncExploreHistogram(_Histograms, AsyncService):
    """The asyncio twin of `ExploreHistogram`: the same methods, to be awaited."""

"""`ExploreSummary`: per-column statistics of a table (``explore/summary``).

Not in the original LO client; named and shaped like `ExploreHistogram`. A summary is a
table with one row per column of the input: ``field``, ``type``, ``count``, ``missing``,
``unique``, ``mean``, ``std``, ``min``, ``25%``, ``50%``, ``75%``, ``max`` (numeric columns),
``top`` and ``freq`` (the others); null where a statistic does not apply.
"""

from __future__ import annotations

from typing import Any

from .._service import AsyncService, SyncService, operation
from .._step import StepPlans, table_step_body
from .._transport import Plan


class _Summaries(StepPlans):
    API_PATH = "/explore/summary"

    @operation
    def run_summary_sync(
        self,
        dataset_name: str,
        summary_name: str,
        pretty_response: bool = False,
        *,
        timeout: float | None = None,
    ) -> Plan[Any]:
        """Describe every column of `dataset_name` and block until the summary is stored.

        Returns the server's whole answer to the POST, ``{"result": "<the summary's URL
        path>"}``; raises `StepFailed` when the summary fails. `timeout`: overall seconds.
        """
        body = table_step_body(dataset_name, summary_name)
        return self._submit(body, summary_name, pretty_response, timeout)

    run_summary_async = run_summary_sync.starting(
        """Start a summary and return at once (call `wait` to block on it)."""
    )

    search_all_summaries = StepPlans.search_all

    @operation
    def search_summary_content(
        self,
        summary_name: str,
        query: dict[str, Any] | str | None = None,
        limit: int = 10,
        skip: int = 0,
        pretty_response: bool = False,
    ) -> Plan[Any]:
        """A page of a summary: ``{"result": [metadata, row, ...]}``, one row per column."""
        return self._search_content(summary_name, query, limit, skip, pretty_response)

    @operation
    def delete_summary(self, summary_name: str, pretty_response: bool = False) -> Plan[Any]:
        """Delete a summary: ``{"result": "<a one-line message>"}``."""
        return self._delete(summary_name, pretty_response)

    @operation
    def wait(self, summary_name: str, timeout: float | None = None) -> Plan[dict[str, Any]]:
        """Block until the summary is stored; its metadata (LO's wait: `timeout` is the
        poll interval, see `Observer.wait`)."""
        return self._wait(summary_name, timeout)


class ExploreSummary(_Summaries, SyncService):
    """Summaries (blocking client).

    Example:
        >>> summary = ExploreSummary("http://34.66.75.31")
        >>> summary.run_summary_sync("titanic", "titanic_summary")
        {'result': '/api/learningOrchestra/v1/explore/summary/titanic_summary'}
        >>> summary.search_summary_content("titanic_summary", query={"field": "Age"})["result"][1]
        {'field': 'Age', 'type': 'float', 'count': 714, 'missing': 177, ...}
    """


class AsyncExploreSummary(_Summaries, AsyncService):
    """The asyncio twin of `ExploreSummary`: the same methods, to be awaited."""

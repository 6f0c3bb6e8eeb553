"""`ExploreSummary`: per-column statistics of a table (``explore/summary``).

Not in the original LO client; named and shaped like `ExploreHistogram`. A summary is a
table with one row per column of the input: ``field``, ``type``, ``count``, ``missing``,
``unique``, ``mean``, ``std``, ``min``, ``25%``, ``50%``, ``75%``, ``max`` (numeric columns),
``top`` and ``freq`` (the others); null where a statistic does not apply.
"""

from __future__ import annotations

from typing import Any

from .._step import StepPlans, table_step_body
from .._transport import AsyncService, SyncService, treat


class _SummaryPlans(StepPlans):
    API_PATH = "/explore/summary"


class ExploreSummary(_SummaryPlans, SyncService):
    """Summaries (blocking client).

    Example:
        >>> summary = ExploreSummary("http://34.66.75.31")
        >>> summary.run_summary_sync("titanic", "titanic_summary")
        {'result': '/api/learningOrchestra/v1/explore/summary/titanic_summary'}
        >>> summary.search_summary_content("titanic_summary", query={"field": "Age"})["result"][1]
        {'field': 'Age', 'type': 'float', 'count': 714, 'missing': 177, ...}
    """

    def run_summary_sync(
        self,
        dataset_name: str,
        summary_name: str,
        pretty_response: bool = False,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Describe every column of `dataset_name` and block until the summary is stored.

        Returns the server's whole answer to the POST, ``{"result": "<the summary's URL
        path>"}``; raises `StepFailed` when the summary fails.
        """
        body = table_step_body(dataset_name, summary_name)
        plan = self._send_and_wait("POST", self.api_path, body, summary_name, timeout)
        return treat(self._run(plan), pretty_response)

    def run_summary_async(
        self, dataset_name: str, summary_name: str, pretty_response: bool = False
    ) -> Any:
        """Start a summary and return at once (call `wait` to block on it)."""
        body = table_step_body(dataset_name, summary_name)
        return treat(self._run(self._send("POST", self.api_path, body)), pretty_response)

    def search_all_summaries(
        self, pretty_response: bool = False, skip: int = 0, limit: int | None = None
    ) -> Any:
        """The metadata of every summary: ``{"result": [metadata, ...]}``."""
        return treat(self._run(self._search_all(skip, limit)), pretty_response)

    def search_summary_content(
        self,
        summary_name: str,
        query: dict[str, Any] | str | None = None,
        limit: int = 10,
        skip: int = 0,
        pretty_response: bool = False,
    ) -> Any:
        """A page of a summary: ``{"result": [metadata, row, ...]}``, one row per column."""
        plan = self._search_content(summary_name, query, limit, skip)
        return treat(self._run(plan), pretty_response)

    def delete_summary(self, summary_name: str, pretty_response: bool = False) -> Any:
        """Delete a summary: ``{"result": "<a one-line message>"}``."""
        return treat(self._run(self._delete(summary_name)), pretty_response)

    def wait(self, summary_name: str, timeout: float | None = None) -> dict[str, Any]:
        """Block until the summary is stored; its metadata (see `Observer.wait`)."""
        return self._run(self._wait(summary_name, timeout))


class AsyncExploreSummary(_SummaryPlans, AsyncService):
    """The asyncio twin of `ExploreSummary`: the same methods, to be awaited."""

    async def run_summary_sync(
        self,
        dataset_name: str,
        summary_name: str,
        pretty_response: bool = False,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Describe every column and wait until the summary is stored; see `ExploreSummary`."""
        body = table_step_body(dataset_name, summary_name)
        plan = self._send_and_wait("POST", self.api_path, body, summary_name, timeout)
        return treat(await self._run(plan), pretty_response)

    async def run_summary_async(
        self, dataset_name: str, summary_name: str, pretty_response: bool = False
    ) -> Any:
        """Start a summary; see `ExploreSummary.run_summary_async`."""
        body = table_step_body(dataset_name, summary_name)
        return treat(await self._run(self._send("POST", self.api_path, body)), pretty_response)

    async def search_all_summaries(
        self, pretty_response: bool = False, skip: int = 0, limit: int | None = None
    ) -> Any:
        """The metadata of every summary."""
        return treat(await self._run(self._search_all(skip, limit)), pretty_response)

    async def search_summary_content(
        self,
        summary_name: str,
        query: dict[str, Any] | str | None = None,
        limit: int = 10,
        skip: int = 0,
        pretty_response: bool = False,
    ) -> Any:
        """A page of a summary; see `ExploreSummary.search_summary_content`."""
        plan = self._search_content(summary_name, query, limit, skip)
        return treat(await self._run(plan), pretty_response)

    async def delete_summary(self, summary_name: str, pretty_response: bool = False) -> Any:
        """Delete a summary."""
        return treat(await self._run(self._delete(summary_name)), pretty_response)

    async def wait(self, summary_name: str, timeout: float | None = None) -> dict[str, Any]:
        """Wait until the summary is stored; its metadata."""
        return await self._run(self._wait(summary_name, timeout))

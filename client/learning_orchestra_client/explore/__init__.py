"""Explore steps: ``explore/histogram`` and ``explore/summary``."""

from .histogram import AsyncExploreHistogram, ExploreHistogram
from .summary import AsyncExploreSummary, ExploreSummary

__all__ = [
    "AsyncExploreHistogram",
    "AsyncExploreSummary",
    "ExploreHistogram",
    "ExploreSummary",
]

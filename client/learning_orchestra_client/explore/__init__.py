"""Explore steps: ``explore/histogram``, ``explore/summary`` and
``explore/{scikitlearn,tensorflow}``."""

from ._explore import AsyncExplore, Explore
from .histogram import AsyncExploreHistogram, ExploreHistogram
from .scikitlearn import AsyncExploreScikitLearn, ExploreScikitLearn
from .summary import AsyncExploreSummary, ExploreSummary
from .tensorflow import AsyncExploreTensorflow, ExploreTensorflow

__all__ = [
    "AsyncExplore",
    "AsyncExploreHistogram",
    "AsyncExploreScikitLearn",
    "AsyncExploreSummary",
    "AsyncExploreTensorflow",
    "Explore",
    "ExploreHistogram",
    "ExploreScikitLearn",
    "ExploreSummary",
    "ExploreTensorflow",
]

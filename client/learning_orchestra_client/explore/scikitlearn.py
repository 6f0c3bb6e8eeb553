"""`ExploreScikitLearn`: a scikit-learn call's result, plotted (``explore/scikitlearn``).

The class name is the original LO client's; the methods are `Explore`'s.
"""

from __future__ import annotations

from ._explore import AsyncExplore, Explore


class ExploreScikitLearn(Explore):
    """scikit-learn explore steps (blocking client).

    Example:
        >>> explore = ExploreScikitLearn("http://34.66.75.31")
        >>> explore.create_explore_sync(
        ...     "pca_plot", "sklearn.decomposition", "PCA", {"n_components": 2},
        ...     "fit_transform", {"X": "$scaled"})
        {'result': '/api/learningOrchestra/v1/explore/scikitlearn/pca_plot'}
        >>> png = explore.search_explore_image("pca_plot")  # bytes of a PNG
    """

    API_PATH = "/explore/scikitlearn"


class AsyncExploreScikitLearn(AsyncExplore):
    """The asyncio twin of `ExploreScikitLearn`."""

    API_PATH = "/explore/scikitlearn"

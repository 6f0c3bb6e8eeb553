"""`ExploreTensorflow`: a TensorFlow call's result, plotted (``explore/tensorflow``).

The class name is the original LO client's; the methods are `Explore`'s.
"""

from __future__ import annotations

from ._explore import AsyncExplore, Explore


class ExploreTensorflow(Explore):
    """TensorFlow explore steps (blocking client).

    Example:
        >>> explore = ExploreTensorflow("http://34.66.75.31")
        >>> explore.create_explore_sync(
        ...     "cumulative", "tensorflow", "math", {},
        ...     "cumsum", {"x": "#np.arange(10.0)"})
        {'result': '/api/learningOrchestra/v1/explore/tensorflow/cumulative'}
    """

    API_PATH = "/explore/tensorflow"


class AsyncExploreTensorflow(AsyncExplore):
    """The asyncio twin of `ExploreTensorflow`."""

    API_PATH = "/explore/tensorflow"

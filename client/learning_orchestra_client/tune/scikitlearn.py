"""`TuneScikitLearn`: scikit-learn tune steps (``tune/scikitlearn``).

Not in the original LO client (it had ``TunePycaret``); the methods are `Tune`'s.
"""

from __future__ import annotations

from ._tune import AsyncTune, Tune


class TuneScikitLearn(Tune):
    """scikit-learn hyperparameter searches (blocking client).

    Example:
        >>> tune = TuneScikitLearn("http://34.66.75.31")
        >>> tune.create_tune_sync(
        ...     "titanic_grid_best", "titanic_grid", "titanic_grid", "fit",
        ...     {"X": "$titanic_features", "y": "$titanic_labels"})
        {'result': '/api/learningOrchestra/v1/tune/scikitlearn/titanic_grid_best'}
    """

    API_PATH = "/tune/scikitlearn"


class AsyncTuneScikitLearn(AsyncTune):
    """The asyncio twin of `TuneScikitLearn`."""

    API_PATH = "/tune/scikitlearn"

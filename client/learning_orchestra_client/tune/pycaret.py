"""`TunePycaret`: PyCaret tunings (``tune/pycaret``).

``tune_model`` of the experiment step on a trained estimator (``"$trained"``).

The class name is the original LO client's; the methods are `Tune`'s.
"""

from __future__ import annotations

from ._tune import AsyncTune, Tune


class TunePycaret(Tune):
    """PyCaret tunings (blocking client).

    Example:
        >>> tune = TunePycaret("http://34.66.75.31")
        >>> tune.create_tune_sync(
        ...     "titanic_tuned", "titanic_experiment", "titanic_experiment", "tune_model",
        ...     {"estimator": "$titanic_best", "n_iter": 5, "fold": 3})
        {'result': '/api/learningOrchestra/v1/tune/pycaret/titanic_tuned'}
    """

    API_PATH = "/tune/pycaret"


class AsyncTunePycaret(AsyncTune):
    """The asyncio twin of `TunePycaret`."""

    API_PATH = "/tune/pycaret"

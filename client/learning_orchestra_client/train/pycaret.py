"""`TrainPycaret`: PyCaret trainings (``train/pycaret``).

``compare_models``, ``create_model`` or ``finalize_model`` of the experiment step
(``parent_name``); the estimator is stored, the leaderboard (``pull()``) is metadata.

The class name is the original LO client's; the methods are `Train`'s.
"""

from __future__ import annotations

from ._train import AsyncTrain, Train


class TrainPycaret(Train):
    """PyCaret trainings (blocking client).

    Example:
        >>> train = TrainPycaret("http://34.66.75.31")
        >>> train.create_training_sync(
        ...     "titanic_best", "titanic_experiment", "titanic_experiment", "compare_models",
        ...     {"include": ["lr", "dt"], "fold": 3})
        {'result': '/api/learningOrchestra/v1/train/pycaret/titanic_best'}
    """

    API_PATH = "/train/pycaret"


class AsyncTrainPycaret(AsyncTrain):
    """The asyncio twin of `TrainPycaret`."""

    API_PATH = "/train/pycaret"

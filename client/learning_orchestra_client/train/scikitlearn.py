"""`TrainScikitLearn`: scikit-learn trainings (``train/scikitlearn``).

The class name is the original LO client's; the methods are `Train`'s.
"""

from __future__ import annotations

from ._train import AsyncTrain, Train


class TrainScikitLearn(Train):
    """scikit-learn trainings (blocking client).

    Example:
        >>> train = TrainScikitLearn("http://34.66.75.31")
        >>> train.create_training_sync(
        ...     "titanic_lr_trained", "titanic_lr", "titanic_lr", "fit",
        ...     {"X": "$titanic_features", "y": "$titanic_labels"})
        {'result': '/api/learningOrchestra/v1/train/scikitlearn/titanic_lr_trained'}
    """

    API_PATH = "/train/scikitlearn"


class AsyncTrainScikitLearn(AsyncTrain):
    """The asyncio twin of `TrainScikitLearn`."""

    API_PATH = "/train/scikitlearn"

"""`TrainAutokeras`: AutoKeras searches (``train/autokeras``).

``fit`` of the task: the architecture search (trials), whose best model is stored
(``.keras``) with the trials as metadata.

The class name is the original LO client's; the methods are `Train`'s. ``TrainAutoKeras``
is the same class: both spellings work.
"""

from __future__ import annotations

from ._train import AsyncTrain, Train


class TrainAutokeras(Train):
    """AutoKeras searches (blocking client).

    Example:
        >>> train = TrainAutokeras("http://34.66.75.31")
        >>> train.create_training_sync(
        ...     "mnist_trained", "mnist_model_autokeras", "mnist_model_autokeras", "fit",
        ...     {"x": "$mnist.train_images", "y": "$mnist.train_labels", "epochs": 1})
        {'result': '/api/learningOrchestra/v1/train/autokeras/mnist_trained'}
    """

    API_PATH = "/train/autokeras"


class AsyncTrainAutokeras(AsyncTrain):
    """The asyncio twin of `TrainAutokeras`."""

    API_PATH = "/train/autokeras"


#: The other spelling of the class name.
TrainAutoKeras = TrainAutokeras
AsyncTrainAutoKeras = AsyncTrainAutokeras

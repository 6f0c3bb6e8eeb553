"""`TrainTensorflow`: TensorFlow/Keras trainings (``train/tensorflow``).

The class name is the original LO client's; the methods are `Train`'s.
"""

from __future__ import annotations

from ._train import AsyncTrain, Train


class TrainTensorflow(Train):
    """TensorFlow/Keras trainings (blocking client).

    Example:
        >>> train = TrainTensorflow("http://34.66.75.31")
        >>> train.create_training_sync(
        ...     "mnist_trained", "mnist_net", "mnist_net", "fit",
        ...     {"x": "$mnist.train_images", "y": "$mnist.train_labels", "epochs": 2})
        {'result': '/api/learningOrchestra/v1/train/tensorflow/mnist_trained'}
    """

    API_PATH = "/train/tensorflow"


class AsyncTrainTensorflow(AsyncTrain):
    """The asyncio twin of `TrainTensorflow`."""

    API_PATH = "/train/tensorflow"

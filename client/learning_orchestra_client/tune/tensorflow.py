"""`TuneTensorflow`: TensorFlow/Keras tune steps (``tune/tensorflow``).

Not in the original LO client (it had ``TunePycaret``); the methods are `Tune`'s.
"""

from __future__ import annotations

from ._tune import AsyncTune, Tune


class TuneTensorflow(Tune):
    """TensorFlow/Keras hyperparameter searches (blocking client).

    Example:
        >>> tune = TuneTensorflow("http://34.66.75.31")
        >>> tune.create_tune_sync(
        ...     "mnist_tuned", "mnist_net", "mnist_compiled", "fit",
        ...     {"x": "$mnist.x", "y": "$mnist.y", "epochs": 3, "validation_split": 0.2})
        {'result': '/api/learningOrchestra/v1/tune/tensorflow/mnist_tuned'}
    """

    API_PATH = "/tune/tensorflow"


class AsyncTuneTensorflow(AsyncTune):
    """The asyncio twin of `TuneTensorflow`."""

    API_PATH = "/tune/tensorflow"

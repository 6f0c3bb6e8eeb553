"""`EvaluateTensorflow`: TensorFlow/Keras evaluations (``evaluate/tensorflow``).

The class name is the original LO client's; the methods are `Evaluate`'s.
"""

from __future__ import annotations

from ._evaluate import AsyncEvaluate, Evaluate


class EvaluateTensorflow(Evaluate):
    """TensorFlow/Keras evaluations (blocking client).

    Example:
        >>> evaluate = EvaluateTensorflow("http://34.66.75.31")
        >>> evaluate.create_evaluate_sync(
        ...     "mnist_evaluated", "mnist_net", "mnist_trained", "evaluate",
        ...     {"x": "$mnist.test_images", "y": "$mnist.test_labels"})
        {'result': '/api/learningOrchestra/v1/evaluate/tensorflow/mnist_evaluated'}
    """

    API_PATH = "/evaluate/tensorflow"


class AsyncEvaluateTensorflow(AsyncEvaluate):
    """The asyncio twin of `EvaluateTensorflow`."""

    API_PATH = "/evaluate/tensorflow"

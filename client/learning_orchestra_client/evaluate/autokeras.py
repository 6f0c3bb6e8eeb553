"""`EvaluateAutokeras`: AutoKeras evaluations (``evaluate/autokeras``).

``evaluate`` of the trained step's best model; the metrics are metadata.

The class name is the original LO client's; the methods are `Evaluate`'s. ``EvaluateAutoKeras``
is the same class: both spellings work.
"""

from __future__ import annotations

from ._evaluate import AsyncEvaluate, Evaluate


class EvaluateAutokeras(Evaluate):
    """AutoKeras evaluations (blocking client).

    Example:
        >>> evaluate = EvaluateAutokeras("http://34.66.75.31")
        >>> evaluate.create_evaluate_sync(
        ...     "mnist_evaluated", "mnist_model_autokeras", "mnist_trained", "evaluate",
        ...     {"x": "$mnist.test_images", "y": "$mnist.test_labels"})
        {'result': '/api/learningOrchestra/v1/evaluate/autokeras/mnist_evaluated'}
    """

    API_PATH = "/evaluate/autokeras"


class AsyncEvaluateAutokeras(AsyncEvaluate):
    """The asyncio twin of `EvaluateAutokeras`."""

    API_PATH = "/evaluate/autokeras"


#: The other spelling of the class name.
EvaluateAutoKeras = EvaluateAutokeras
AsyncEvaluateAutoKeras = AsyncEvaluateAutokeras

"""`PredictAutokeras`: AutoKeras predictions (``predict/autokeras``).

``predict`` of the trained step's best model.

The class name is the original LO client's; the methods are `Predict`'s. ``PredictAutoKeras``
is the same class: both spellings work.
"""

from __future__ import annotations

from ._predict import AsyncPredict, Predict


class PredictAutokeras(Predict):
    """AutoKeras predictions (blocking client).

    Example:
        >>> predict = PredictAutokeras("http://34.66.75.31")
        >>> predict.create_prediction_sync(
        ...     "mnist_predicted", "mnist_model_autokeras", "mnist_trained", "predict",
        ...     {"x": "$mnist.test_images"})
        {'result': '/api/learningOrchestra/v1/predict/autokeras/mnist_predicted'}
    """

    API_PATH = "/predict/autokeras"


class AsyncPredictAutokeras(AsyncPredict):
    """The asyncio twin of `PredictAutokeras`."""

    API_PATH = "/predict/autokeras"


#: The other spelling of the class name.
PredictAutoKeras = PredictAutokeras
AsyncPredictAutoKeras = AsyncPredictAutokeras

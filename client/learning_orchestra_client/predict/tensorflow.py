"""`PredictTensorflow`: TensorFlow/Keras predictions (``predict/tensorflow``).

The class name is the original LO client's; the methods are `Predict`'s.
"""

from __future__ import annotations

from ._predict import AsyncPredict, Predict


class PredictTensorflow(Predict):
    """TensorFlow/Keras predictions (blocking client).

    Example:
        >>> predict = PredictTensorflow("http://34.66.75.31")
        >>> predict.create_prediction_sync(
        ...     "mnist_predicted", "mnist_net", "mnist_trained", "predict",
        ...     {"x": "$mnist.test_images"})
        {'result': '/api/learningOrchestra/v1/predict/tensorflow/mnist_predicted'}
    """

    API_PATH = "/predict/tensorflow"


class AsyncPredictTensorflow(AsyncPredict):
    """The asyncio twin of `PredictTensorflow`."""

    API_PATH = "/predict/tensorflow"

"""`PredictScikitLearn`: scikit-learn predictions (``predict/scikitlearn``).

The class name is the original LO client's; the methods are `Predict`'s.
"""

from __future__ import annotations

from ._predict import AsyncPredict, Predict


class PredictScikitLearn(Predict):
    """scikit-learn predictions (blocking client).

    Example:
        >>> predict = PredictScikitLearn("http://34.66.75.31")
        >>> predict.create_prediction_sync(
        ...     "titanic_lr_predicted", "titanic_lr", "titanic_lr_trained", "predict",
        ...     {"X": "$titanic_test_features"})
        {'result': '/api/learningOrchestra/v1/predict/scikitlearn/titanic_lr_predicted'}
    """

    API_PATH = "/predict/scikitlearn"


class AsyncPredictScikitLearn(AsyncPredict):
    """The asyncio twin of `PredictScikitLearn`."""

    API_PATH = "/predict/scikitlearn"

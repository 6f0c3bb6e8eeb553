"""`PredictPycaret`: PyCaret predictions (``predict/pycaret``).

``predict_model(estimator, data=...)`` of the experiment step: a table with the
predictions.

The class name is the original LO client's; the methods are `Predict`'s.
"""

from __future__ import annotations

from ._predict import AsyncPredict, Predict


class PredictPycaret(Predict):
    """PyCaret predictions (blocking client).

    Example:
        >>> predict = PredictPycaret("http://34.66.75.31")
        >>> predict.create_prediction_sync(
        ...     "titanic_predicted", "titanic_experiment", "titanic_experiment", "predict_model",
        ...     {"estimator": "$titanic_tuned", "data": "$titanic_test"})
        {'result': '/api/learningOrchestra/v1/predict/pycaret/titanic_predicted'}
    """

    API_PATH = "/predict/pycaret"


class AsyncPredictPycaret(AsyncPredict):
    """The asyncio twin of `PredictPycaret`."""

    API_PATH = "/predict/pycaret"

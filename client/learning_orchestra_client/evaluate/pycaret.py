"""`EvaluatePycaret`: PyCaret evaluations (``evaluate/pycaret``).

Hold-out metrics: ``predict_model(estimator)`` of the experiment step, then ``pull()``
(the metrics are the step's metadata).

The class name is the original LO client's; the methods are `Evaluate`'s.
"""

from __future__ import annotations

from ._evaluate import AsyncEvaluate, Evaluate


class EvaluatePycaret(Evaluate):
    """PyCaret evaluations (blocking client).

    Example:
        >>> evaluate = EvaluatePycaret("http://34.66.75.31")
        >>> evaluate.create_evaluate_sync(
        ...     "titanic_holdout", "titanic_experiment", "titanic_experiment", "predict_model",
        ...     {"estimator": "$titanic_tuned"})
        {'result': '/api/learningOrchestra/v1/evaluate/pycaret/titanic_holdout'}
    """

    API_PATH = "/evaluate/pycaret"


class AsyncEvaluatePycaret(AsyncEvaluate):
    """The asyncio twin of `EvaluatePycaret`."""

    API_PATH = "/evaluate/pycaret"

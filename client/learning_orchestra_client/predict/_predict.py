"""`Predict` / `AsyncPredict`: the client of ``predict/{scikitlearn,tensorflow,pycaret,autokeras}``.

Method names and parameters are those of the original LO client's ``predict._predict.Predict``
(``create_prediction_sync``/``_async``, ``search_all_predictions``,
``search_prediction_content``, ``delete_prediction``, ``wait``), and so is the body (``name``,
``modelName``, ``parentName``, ``method``, ``methodParameters``, ``description``).
``delete_prediction_async`` is the name of LO's older releases.
"""

from __future__ import annotations

from .._service import AsyncService, SyncService
from .._step import MethodStepPlans


class _Predictions(MethodStepPlans):
    create_prediction_sync = MethodStepPlans.create_sync
    create_prediction_async = MethodStepPlans.create_async
    search_all_predictions = MethodStepPlans.search_all
    search_prediction_content = MethodStepPlans.search_content
    delete_prediction = MethodStepPlans.delete
    #: The name of LO's older releases.
    delete_prediction_async = MethodStepPlans.delete


class Predict(_Predictions, SyncService):
    """Predictions of one toolkit (blocking client); see `PredictScikitLearn`. The operations are
    `MethodStepPlans`' under LO's names."""


class AsyncPredict(_Predictions, AsyncService):
    """The asyncio twin of `Predict`: the same methods, to be awaited."""

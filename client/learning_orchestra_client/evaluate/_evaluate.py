"""`Evaluate` / `AsyncEvaluate`: the client of
``evaluate/{scikitlearn,tensorflow,pycaret,autokeras}``.

Method names and parameters are those of the original LO client's
``evaluate._evaluate.Evaluate`` (``create_evaluate_sync``/``_async``, ``search_all_evaluates``,
``search_evaluate_content``, ``delete_evaluate``, ``wait``), and so is the body (``name``,
``modelName``, ``parentName``, ``method``, ``methodParameters``, ``description``).
``delete_evaluate_async`` is the name of LO's older releases.
"""

from __future__ import annotations

from .._service import AsyncService, SyncService
from .._step import MethodStepPlans


class _Evaluations(MethodStepPlans):
    create_evaluate_sync = MethodStepPlans.create_sync
    create_evaluate_async = MethodStepPlans.create_async
    search_all_evaluates = MethodStepPlans.search_all
    search_evaluate_content = MethodStepPlans.search_content
    delete_evaluate = MethodStepPlans.delete
    #: The name of LO's older releases.
    delete_evaluate_async = MethodStepPlans.delete


class Evaluate(_Evaluations, SyncService):
    """Evaluations of one toolkit (blocking client); see `EvaluateScikitLearn`. The operations are
    `MethodStepPlans`' under LO's names."""


class AsyncEvaluate(_Evaluations, AsyncService):
    """The asyncio twin of `Evaluate`: the same methods, to be awaited."""

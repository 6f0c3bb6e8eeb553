"""`Tune` / `AsyncTune`: the client of ``tune/{scikitlearn,tensorflow,pycaret}``.

Method names and parameters are those of the original LO client's ``tune._tune.Tune``
(``create_tune_sync``/``_async``, ``search_all_tunes``, ``search_tune_content``,
``delete_tune``, ``wait``), and so is the body (``name``, ``modelName``, ``parentName``,
``method``, ``methodParameters``, ``description``). LO shipped only ``TunePycaret``;
``TuneScikitLearn`` and ``TuneTensorflow`` are named after it.
"""

from __future__ import annotations

from .._service import AsyncService, SyncService
from .._step import MethodStepPlans


class _Tunes(MethodStepPlans):
    create_tune_sync = MethodStepPlans.create_sync
    create_tune_async = MethodStepPlans.create_async
    search_all_tunes = MethodStepPlans.search_all
    search_tune_content = MethodStepPlans.search_content
    delete_tune = MethodStepPlans.delete


class Tune(_Tunes, SyncService):
    """Tune steps of one toolkit (blocking client); see `TuneScikitLearn`. The operations are
    `MethodStepPlans`' under LO's names."""


class AsyncTune(_Tunes, AsyncService):
    """The asyncio twin of `Tune`: the same methods, to be awaited."""

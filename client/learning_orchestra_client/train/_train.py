"""`Train` / `AsyncTrain`: the client of ``train/{scikitlearn,tensorflow,pycaret,autokeras}``.

Method names and parameters are those of the original LO client's ``train._train.Train``
(``create_training_sync``/``_async``, ``search_all_trainings``, ``search_training_content``,
``delete_training``, ``wait``), and so is the body (``name``, ``modelName``, ``parentName``,
``method``, ``methodParameters``, ``description``). ``delete_training_async`` is the name of
LO's older releases.
"""

from __future__ import annotations

from .._service import AsyncService, SyncService
from .._step import MethodStepPlans


class _Trainings(MethodStepPlans):
    create_training_sync = MethodStepPlans.create_sync
    create_training_async = MethodStepPlans.create_async
    search_all_trainings = MethodStepPlans.search_all
    search_training_content = MethodStepPlans.search_content
    delete_training = MethodStepPlans.delete
    #: The name of LO's older releases.
    delete_training_async = MethodStepPlans.delete


class Train(_Trainings, SyncService):
    """Trainings of one toolkit (blocking client); see `TrainScikitLearn`. The operations are
    `MethodStepPlans`' under LO's names."""


class AsyncTrain(_Trainings, AsyncService):
    """The asyncio twin of `Train`: the same methods, to be awaited."""

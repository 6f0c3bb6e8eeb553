"""`ModelPycaret`: PyCaret experiments (``model/pycaret``).

``modulePath.class()`` (``ClassificationExperiment``, ``RegressionExperiment``), then
``setup(**class_parameters)`` on it, in one model step: the experiment that train, tune,
evaluate and predict steps call methods of (their ``parent_name``).

The class name is the original LO client's; the methods are `Model`'s.
"""

from __future__ import annotations

from ._model import AsyncModel, Model


class ModelPycaret(Model):
    """PyCaret experiments (blocking client).

    Example:
        >>> model = ModelPycaret("http://34.66.75.31")
        >>> model.create_model_sync(
        ...     "titanic_experiment", "pycaret.classification", "ClassificationExperiment",
        ...     {"data": "$titanic", "target": "Survived", "session_id": 1})
        {'result': '/api/learningOrchestra/v1/model/pycaret/titanic_experiment'}
    """

    API_PATH = "/model/pycaret"


class AsyncModelPycaret(AsyncModel):
    """The asyncio twin of `ModelPycaret`."""

    API_PATH = "/model/pycaret"

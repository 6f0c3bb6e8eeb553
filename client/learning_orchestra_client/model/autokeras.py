"""`ModelAutoKeras`: AutoKeras tasks (``model/autokeras``).

An AutoKeras task (``ImageClassifier``, ``StructuredDataClassifier``, ``AutoModel``, ...);
its search runs in the train step (``fit``).

The class name is the original LO client's; the methods are `Model`'s. ``ModelAutokeras``
is the same class: both spellings work.
"""

from __future__ import annotations

from ._model import AsyncModel, Model


class ModelAutoKeras(Model):
    """AutoKeras tasks (blocking client).

    Example:
        >>> model = ModelAutoKeras("http://34.66.75.31")
        >>> model.create_model_sync(
        ...     "mnist_model_autokeras", "autokeras.tasks.image", "ImageClassifier",
        ...     {"overwrite": True, "max_trials": 1})
        {'result': '/api/learningOrchestra/v1/model/autokeras/mnist_model_autokeras'}
    """

    API_PATH = "/model/autokeras"


class AsyncModelAutoKeras(AsyncModel):
    """The asyncio twin of `ModelAutoKeras`."""

    API_PATH = "/model/autokeras"


#: The other spelling of the class name.
ModelAutokeras = ModelAutoKeras
AsyncModelAutokeras = AsyncModelAutoKeras

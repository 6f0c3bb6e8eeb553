"""`ModelScikitLearn`: a scikit-learn estimator kept on the server (``model/scikitlearn``).

The class name is the original LO client's; the methods are `Model`'s.
"""

from __future__ import annotations

from ._model import AsyncModel, Model


class ModelScikitLearn(Model):
    """scikit-learn models (blocking client).

    Example:
        >>> model = ModelScikitLearn("http://34.66.75.31")
        >>> model.create_model_sync(
        ...     "titanic_lr", "sklearn.linear_model", "LogisticRegression", {"max_iter": 500})
        {'result': '/api/learningOrchestra/v1/model/scikitlearn/titanic_lr'}
    """

    API_PATH = "/model/scikitlearn"


class AsyncModelScikitLearn(AsyncModel):
    """The asyncio twin of `ModelScikitLearn`."""

    API_PATH = "/model/scikitlearn"

"""`TransformScikitLearn`: call a scikit-learn class on the server (``transform/scikitlearn``).

The class name is the original LO client's; the methods are `Transform`'s.
"""

from __future__ import annotations

from ._transform import AsyncTransform, Transform


class TransformScikitLearn(Transform):
    """scikit-learn transforms (blocking client).

    Example:
        >>> transform = TransformScikitLearn("http://34.66.75.31")
        >>> transform.create_transform_sync(
        ...     "scaled", "sklearn.preprocessing", "StandardScaler", {},
        ...     "fit_transform", {"X": "$titanic_numeric"})
        {'result': '/api/learningOrchestra/v1/transform/scikitlearn/scaled'}
    """

    API_PATH = "/transform/scikitlearn"


class AsyncTransformScikitLearn(AsyncTransform):
    """The asyncio twin of `TransformScikitLearn`."""

    API_PATH = "/transform/scikitlearn"

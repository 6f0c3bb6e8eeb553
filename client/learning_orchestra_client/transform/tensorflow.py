"""`TransformTensorflow`: call a TensorFlow class on the server (``transform/tensorflow``).

The class name is the original LO client's; the methods are `Transform`'s.
"""

from __future__ import annotations

from ._transform import AsyncTransform, Transform


class TransformTensorflow(Transform):
    """TensorFlow transforms (blocking client).

    Example:
        >>> transform = TransformTensorflow("http://34.66.75.31")
        >>> transform.create_transform_sync(
        ...     "normalized", "tensorflow", "math", {},
        ...     "l2_normalize", {"x": "$scaled", "axis": 1})
        {'result': '/api/learningOrchestra/v1/transform/tensorflow/normalized'}
    """

    API_PATH = "/transform/tensorflow"


class AsyncTransformTensorflow(AsyncTransform):
    """The asyncio twin of `TransformTensorflow`."""

    API_PATH = "/transform/tensorflow"

"""Transform steps: ``transform/projection`` and ``transform/dataType``."""

from .data_type import AsyncTransformDataType, TransformDataType
from .projection import AsyncTransformProjection, TransformProjection

__all__ = [
    "AsyncTransformDataType",
    "AsyncTransformProjection",
    "TransformDataType",
    "TransformProjection",
]

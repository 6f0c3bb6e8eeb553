"""Transform steps: ``transform/projection``, ``transform/dataType`` and
``transform/{scikitlearn,tensorflow}``."""

from ._transform import AsyncTransform, Transform
from .data_type import AsyncTransformDataType, TransformDataType
from .projection import AsyncTransformProjection, TransformProjection
from .scikitlearn import AsyncTransformScikitLearn, TransformScikitLearn
from .tensorflow import AsyncTransformTensorflow, TransformTensorflow

__all__ = [
    "AsyncTransform",
    "AsyncTransformDataType",
    "AsyncTransformProjection",
    "AsyncTransformScikitLearn",
    "AsyncTransformTensorflow",
    "Transform",
    "TransformDataType",
    "TransformProjection",
    "TransformScikitLearn",
    "TransformTensorflow",
]

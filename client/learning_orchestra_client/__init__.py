"""Python client of Learning Orchestra, an orchestrator of machine-learning pipeline steps.

The module layout and names follow the original LO client, so notebooks written for it
keep working::

    from learning_orchestra_client.dataset.csv import DatasetCsv
    from learning_orchestra_client.observe.observe import Observer

Every class also has an asyncio twin (``AsyncDatasetCsv``, ``AsyncObserver``, ...).
See docs/client.md.
"""

from ._transport import BASE_PATH, normalize_cluster_url
from .dataset import (
    AsyncDataset,
    AsyncDatasetCsv,
    AsyncDatasetGeneric,
    Dataset,
    DatasetCsv,
    DatasetGeneric,
)
from .exceptions import (
    BadRequest,
    Conflict,
    ConnectionFailed,
    InvalidRequest,
    LearningOrchestraError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServerError,
    StepCancelled,
    StepFailed,
    Unauthorized,
    WaitTimeout,
)
from .explore import (
    AsyncExploreHistogram,
    AsyncExploreScikitLearn,
    AsyncExploreSummary,
    AsyncExploreTensorflow,
    ExploreHistogram,
    ExploreScikitLearn,
    ExploreSummary,
    ExploreTensorflow,
)
from .function import AsyncFunctionPython, FunctionPython
from .observe import AsyncObserver, Observer
from .transform import (
    AsyncTransformDataType,
    AsyncTransformProjection,
    AsyncTransformScikitLearn,
    AsyncTransformTensorflow,
    TransformDataType,
    TransformProjection,
    TransformScikitLearn,
    TransformTensorflow,
)

__all__ = [
    "BASE_PATH",
    "AsyncDataset",
    "AsyncDatasetCsv",
    "AsyncDatasetGeneric",
    "AsyncExploreHistogram",
    "AsyncExploreScikitLearn",
    "AsyncExploreSummary",
    "AsyncExploreTensorflow",
    "AsyncFunctionPython",
    "AsyncObserver",
    "AsyncTransformDataType",
    "AsyncTransformProjection",
    "AsyncTransformScikitLearn",
    "AsyncTransformTensorflow",
    "BadRequest",
    "Conflict",
    "ConnectionFailed",
    "Dataset",
    "DatasetCsv",
    "DatasetGeneric",
    "ExploreHistogram",
    "ExploreScikitLearn",
    "ExploreSummary",
    "ExploreTensorflow",
    "FunctionPython",
    "InvalidRequest",
    "LearningOrchestraError",
    "MethodNotAllowed",
    "NotFound",
    "Observer",
    "PayloadTooLarge",
    "ServerError",
    "StepCancelled",
    "StepFailed",
    "TransformDataType",
    "TransformProjection",
    "TransformScikitLearn",
    "TransformTensorflow",
    "Unauthorized",
    "WaitTimeout",
    "normalize_cluster_url",
]

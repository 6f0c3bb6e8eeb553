"""Python client of Learning Orchestra, an orchestrator of machine-learning pipeline steps.

`Orchestra` is the quickest way in (any step by name, results as DataFrames, re-runs,
logs, progress bars)::

    from learning_orchestra_client import Orchestra
    orc = Orchestra("http://127.0.0.1:8080")

The per-family classes keep the original LO client's module layout and names, so notebooks
written for it keep working::

    from learning_orchestra_client.dataset.csv import DatasetCsv
    from learning_orchestra_client.observe.observe import Observer

Every class also has an asyncio twin (``AsyncDatasetCsv``, ``AsyncObserver``, ...).
See docs/client.md.
"""

from ._transport import BASE_PATH, normalize_cluster_url
from .builder import (
    AsyncBuilderAutoKeras,
    AsyncBuilderAutokeras,
    AsyncBuilderPycaret,
    BuilderAutoKeras,
    BuilderAutokeras,
    BuilderPycaret,
)
from .dataset import (
    AsyncDataset,
    AsyncDatasetCsv,
    AsyncDatasetGeneric,
    Dataset,
    DatasetCsv,
    DatasetGeneric,
)
from .evaluate import (
    AsyncEvaluateScikitLearn,
    AsyncEvaluateTensorflow,
    EvaluateScikitLearn,
    EvaluateTensorflow,
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
from .model import (
    AsyncModelScikitLearn,
    AsyncModelTensorflow,
    ModelScikitLearn,
    ModelTensorflow,
)
from .observe import AsyncObserver, Observer
from .orchestra import AsyncOrchestra, AsyncStep, Lineage, Orchestra, Step, Steps
from .predict import (
    AsyncPredictScikitLearn,
    AsyncPredictTensorflow,
    PredictScikitLearn,
    PredictTensorflow,
)
from .train import (
    AsyncTrainScikitLearn,
    AsyncTrainTensorflow,
    TrainScikitLearn,
    TrainTensorflow,
)
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
from .tune import (
    AsyncTuneScikitLearn,
    AsyncTuneTensorflow,
    TuneScikitLearn,
    TuneTensorflow,
)

__all__ = [
    "BASE_PATH",
    "AsyncBuilderAutoKeras",
    "AsyncBuilderAutokeras",
    "AsyncBuilderPycaret",
    "AsyncDataset",
    "AsyncDatasetCsv",
    "AsyncDatasetGeneric",
    "AsyncEvaluateScikitLearn",
    "AsyncEvaluateTensorflow",
    "AsyncExploreHistogram",
    "AsyncExploreScikitLearn",
    "AsyncExploreSummary",
    "AsyncExploreTensorflow",
    "AsyncFunctionPython",
    "AsyncModelScikitLearn",
    "AsyncModelTensorflow",
    "AsyncObserver",
    "AsyncOrchestra",
    "AsyncPredictScikitLearn",
    "AsyncPredictTensorflow",
    "AsyncStep",
    "AsyncTrainScikitLearn",
    "AsyncTrainTensorflow",
    "AsyncTransformDataType",
    "AsyncTransformProjection",
    "AsyncTransformScikitLearn",
    "AsyncTransformTensorflow",
    "AsyncTuneScikitLearn",
    "AsyncTuneTensorflow",
    "BadRequest",
    "BuilderAutoKeras",
    "BuilderAutokeras",
    "BuilderPycaret",
    "Conflict",
    "ConnectionFailed",
    "Dataset",
    "DatasetCsv",
    "DatasetGeneric",
    "EvaluateScikitLearn",
    "EvaluateTensorflow",
    "ExploreHistogram",
    "ExploreScikitLearn",
    "ExploreSummary",
    "ExploreTensorflow",
    "FunctionPython",
    "InvalidRequest",
    "LearningOrchestraError",
    "Lineage",
    "MethodNotAllowed",
    "ModelScikitLearn",
    "ModelTensorflow",
    "NotFound",
    "Observer",
    "Orchestra",
    "PayloadTooLarge",
    "PredictScikitLearn",
    "PredictTensorflow",
    "ServerError",
    "Step",
    "StepCancelled",
    "StepFailed",
    "Steps",
    "TrainScikitLearn",
    "TrainTensorflow",
    "TransformDataType",
    "TransformProjection",
    "TransformScikitLearn",
    "TransformTensorflow",
    "TuneScikitLearn",
    "TuneTensorflow",
    "Unauthorized",
    "WaitTimeout",
    "normalize_cluster_url",
]

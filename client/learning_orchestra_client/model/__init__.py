"""Model steps: ``model/{scikitlearn,tensorflow}``."""

from ._model import AsyncModel, Model
from .scikitlearn import AsyncModelScikitLearn, ModelScikitLearn
from .tensorflow import AsyncModelTensorflow, ModelTensorflow

__all__ = [
    "AsyncModel",
    "AsyncModelScikitLearn",
    "AsyncModelTensorflow",
    "Model",
    "ModelScikitLearn",
    "ModelTensorflow",
]

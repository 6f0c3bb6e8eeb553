"""Model steps: ``model/{scikitlearn,tensorflow,pycaret,autokeras}``."""

from ._model import AsyncModel, Model
from .autokeras import AsyncModelAutoKeras, AsyncModelAutokeras, ModelAutoKeras, ModelAutokeras
from .pycaret import AsyncModelPycaret, ModelPycaret
from .scikitlearn import AsyncModelScikitLearn, ModelScikitLearn
from .tensorflow import AsyncModelTensorflow, ModelTensorflow

__all__ = [
    "AsyncModel",
    "AsyncModelAutoKeras",
    "AsyncModelAutokeras",
    "AsyncModelPycaret",
    "AsyncModelScikitLearn",
    "AsyncModelTensorflow",
    "Model",
    "ModelAutoKeras",
    "ModelAutokeras",
    "ModelPycaret",
    "ModelScikitLearn",
    "ModelTensorflow",
]

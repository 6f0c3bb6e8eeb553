"""Predict steps: ``predict/{scikitlearn,tensorflow,pycaret,autokeras}``."""

from ._predict import AsyncPredict, Predict
from .autokeras import (
    AsyncPredictAutoKeras,
    AsyncPredictAutokeras,
    PredictAutoKeras,
    PredictAutokeras,
)
from .pycaret import AsyncPredictPycaret, PredictPycaret
from .scikitlearn import AsyncPredictScikitLearn, PredictScikitLearn
from .tensorflow import AsyncPredictTensorflow, PredictTensorflow

__all__ = [
    "AsyncPredict",
    "AsyncPredictAutoKeras",
    "AsyncPredictAutokeras",
    "AsyncPredictPycaret",
    "AsyncPredictScikitLearn",
    "AsyncPredictTensorflow",
    "Predict",
    "PredictAutoKeras",
    "PredictAutokeras",
    "PredictPycaret",
    "PredictScikitLearn",
    "PredictTensorflow",
]

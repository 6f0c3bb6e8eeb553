"""Predict steps: ``predict/{scikitlearn,tensorflow}``."""

from ._predict import AsyncPredict, Predict
from .scikitlearn import AsyncPredictScikitLearn, PredictScikitLearn
from .tensorflow import AsyncPredictTensorflow, PredictTensorflow

__all__ = [
    "AsyncPredict",
    "AsyncPredictScikitLearn",
    "AsyncPredictTensorflow",
    "Predict",
    "PredictScikitLearn",
    "PredictTensorflow",
]

"""Train steps: ``train/{scikitlearn,tensorflow}``."""

from ._train import AsyncTrain, Train
from .scikitlearn import AsyncTrainScikitLearn, TrainScikitLearn
from .tensorflow import AsyncTrainTensorflow, TrainTensorflow

__all__ = [
    "AsyncTrain",
    "AsyncTrainScikitLearn",
    "AsyncTrainTensorflow",
    "Train",
    "TrainScikitLearn",
    "TrainTensorflow",
]

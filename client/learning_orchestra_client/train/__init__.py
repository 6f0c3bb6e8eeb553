"""Train steps: ``train/{scikitlearn,tensorflow,pycaret,autokeras}``."""

from ._train import AsyncTrain, Train
from .autokeras import AsyncTrainAutoKeras, AsyncTrainAutokeras, TrainAutoKeras, TrainAutokeras
from .pycaret import AsyncTrainPycaret, TrainPycaret
from .scikitlearn import AsyncTrainScikitLearn, TrainScikitLearn
from .tensorflow import AsyncTrainTensorflow, TrainTensorflow

__all__ = [
    "AsyncTrain",
    "AsyncTrainAutoKeras",
    "AsyncTrainAutokeras",
    "AsyncTrainPycaret",
    "AsyncTrainScikitLearn",
    "AsyncTrainTensorflow",
    "Train",
    "TrainAutoKeras",
    "TrainAutokeras",
    "TrainPycaret",
    "TrainScikitLearn",
    "TrainTensorflow",
]

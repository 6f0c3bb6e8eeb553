"""Evaluate steps: ``evaluate/{scikitlearn,tensorflow,pycaret,autokeras}``."""

from ._evaluate import AsyncEvaluate, Evaluate
from .autokeras import (
    AsyncEvaluateAutoKeras,
    AsyncEvaluateAutokeras,
    EvaluateAutoKeras,
    EvaluateAutokeras,
)
from .pycaret import AsyncEvaluatePycaret, EvaluatePycaret
from .scikitlearn import AsyncEvaluateScikitLearn, EvaluateScikitLearn
from .tensorflow import AsyncEvaluateTensorflow, EvaluateTensorflow

__all__ = [
    "AsyncEvaluate",
    "AsyncEvaluateAutoKeras",
    "AsyncEvaluateAutokeras",
    "AsyncEvaluatePycaret",
    "AsyncEvaluateScikitLearn",
    "AsyncEvaluateTensorflow",
    "Evaluate",
    "EvaluateAutoKeras",
    "EvaluateAutokeras",
    "EvaluatePycaret",
    "EvaluateScikitLearn",
    "EvaluateTensorflow",
]

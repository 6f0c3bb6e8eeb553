"""Evaluate steps: ``evaluate/{scikitlearn,tensorflow}``."""

from ._evaluate import AsyncEvaluate, Evaluate
from .scikitlearn import AsyncEvaluateScikitLearn, EvaluateScikitLearn
from .tensorflow import AsyncEvaluateTensorflow, EvaluateTensorflow

__all__ = [
    "AsyncEvaluate",
    "AsyncEvaluateScikitLearn",
    "AsyncEvaluateTensorflow",
    "Evaluate",
    "EvaluateScikitLearn",
    "EvaluateTensorflow",
]

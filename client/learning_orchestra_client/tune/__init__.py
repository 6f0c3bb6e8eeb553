"""Tune steps: ``tune/{scikitlearn,tensorflow}``."""

from ._tune import AsyncTune, Tune
from .scikitlearn import AsyncTuneScikitLearn, TuneScikitLearn
from .tensorflow import AsyncTuneTensorflow, TuneTensorflow

__all__ = [
    "AsyncTune",
    "AsyncTuneScikitLearn",
    "AsyncTuneTensorflow",
    "Tune",
    "TuneScikitLearn",
    "TuneTensorflow",
]

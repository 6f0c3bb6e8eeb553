"""Tune steps: ``tune/{scikitlearn,tensorflow,pycaret}``."""

from ._tune import AsyncTune, Tune
from .pycaret import AsyncTunePycaret, TunePycaret
from .scikitlearn import AsyncTuneScikitLearn, TuneScikitLearn
from .tensorflow import AsyncTuneTensorflow, TuneTensorflow

__all__ = [
    "AsyncTune",
    "AsyncTunePycaret",
    "AsyncTuneScikitLearn",
    "AsyncTuneTensorflow",
    "Tune",
    "TunePycaret",
    "TuneScikitLearn",
    "TuneTensorflow",
]

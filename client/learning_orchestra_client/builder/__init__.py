"""Builder steps: a whole AutoML pipeline in one call (``builder/pycaret``,
``builder/autokeras``)."""

from .builder import (
    AsyncBuilderAutoKeras,
    AsyncBuilderAutokeras,
    AsyncBuilderPycaret,
    BuilderAutoKeras,
    BuilderAutokeras,
    BuilderPycaret,
)

__all__ = [
    "AsyncBuilderAutoKeras",
    "AsyncBuilderAutokeras",
    "AsyncBuilderPycaret",
    "BuilderAutoKeras",
    "BuilderAutokeras",
    "BuilderPycaret",
]

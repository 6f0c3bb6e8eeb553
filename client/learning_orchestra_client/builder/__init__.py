"""Builder steps: a whole AutoML pipeline in one call (``builder/pycaret``,
``builder/autokeras``), and Spark MLlib classifiers on PySpark features, one predictions
table each (``builder/sparkml``)."""

from .builder import (
    AsyncBuilderAutoKeras,
    AsyncBuilderAutokeras,
    AsyncBuilderPycaret,
    AsyncBuilderSparkMl,
    AsyncBuilderSparkml,
    BuilderAutoKeras,
    BuilderAutokeras,
    BuilderPycaret,
    BuilderSparkMl,
    BuilderSparkml,
)

__all__ = [
    "AsyncBuilderAutoKeras",
    "AsyncBuilderAutokeras",
    "AsyncBuilderPycaret",
    "AsyncBuilderSparkMl",
    "AsyncBuilderSparkml",
    "BuilderAutoKeras",
    "BuilderAutokeras",
    "BuilderPycaret",
    "BuilderSparkMl",
    "BuilderSparkml",
]

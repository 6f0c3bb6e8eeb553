"""Learning Orchestra: a RESTful orchestrator of machine-learning pipeline steps."""

__version__ = "0.1.0"

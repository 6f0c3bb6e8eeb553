"""Function steps: ``function/python``."""

from .python import AsyncFunctionPython, FunctionPython

__all__ = ["AsyncFunctionPython", "FunctionPython"]

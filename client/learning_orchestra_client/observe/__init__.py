"""Waiting for steps through the observe service."""

from .observe import AsyncObserver, Observer

__all__ = ["AsyncObserver", "Observer"]

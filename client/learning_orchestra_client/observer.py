"""Older LO releases imported the observer from here (``learning_orchestra_client.observer``)."""

from .observe.observe import AsyncObserver, Observer

__all__ = ["AsyncObserver", "Observer"]

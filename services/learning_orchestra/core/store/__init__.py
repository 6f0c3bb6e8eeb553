"""Store adapters, chosen by URL (`LO_STORE_URL`)."""

from __future__ import annotations

from urllib.parse import urlparse

from ..errors import Invalid
from .base import Changes, Store
from .sqlite import SqliteStore

__all__ = ["Changes", "SqliteStore", "Store", "store_from_url"]


def store_from_url(url: str) -> Store:
    """`sqlite:///abs/path.sqlite3` (three slashes, then the absolute path) or
    `mongodb://host/db` (`mongodb+srv://` too)."""
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        return SqliteStore(url[len("sqlite://") :])
    if scheme in ("mongodb", "mongodb+srv"):
        from .mongo import MongoStore  # imported only when used

        return MongoStore(url)
    raise Invalid(f"LO_STORE_URL {url!r}: use sqlite:///path or mongodb://host/database")

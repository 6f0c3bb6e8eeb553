"""One exception hierarchy, mapped to HTTP status codes in exactly one place (`api.py`).

Messages are written for the user: they say what is wrong and what to change.
"""

from __future__ import annotations

from typing import Any


class LOError(Exception):
    """Base of every error a user can cause or observe."""

    status_code = 500
    code = "internal"

    def __init__(self, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class BadRequest(LOError):
    status_code = 400
    code = "bad_request"


class Unauthorized(LOError):
    status_code = 401
    code = "unauthorized"


class NotFound(LOError):
    status_code = 404
    code = "not_found"


class MethodNotAllowed(LOError):
    status_code = 405
    code = "method_not_allowed"


class ObserveTimeout(LOError):
    status_code = 408
    code = "timeout"


class CursorExpired(LOError):
    """An observe cursor older than the changes the store still keeps (or not one of its own)."""

    status_code = 410
    code = "cursor_expired"


class Conflict(LOError):
    """The name is taken, or the step is busy."""

    status_code = 409
    code = "conflict"


class NameTaken(Conflict):
    code = "name_taken"


class TooLarge(LOError):
    status_code = 413
    code = "too_large"


class Invalid(LOError):
    """A request that is well-formed JSON but asks for something impossible."""

    status_code = 422
    code = "invalid"


class StoreUnavailable(LOError):
    status_code = 503
    code = "store_unavailable"


class JobFailed(Exception):
    """Raised inside a job: the step fails with this message (no traceback shown as a bug).

    `traceback` is shown to the user instead when given, e.g. that of their own code."""

    def __init__(self, message: str, traceback: str | None = None) -> None:
        super().__init__(message)
        self.traceback = traceback

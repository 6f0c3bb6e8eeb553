"""The client's exception hierarchy.

Every error this package raises on purpose is a `LearningOrchestraError`:

- an HTTP answer outside 2xx becomes the subclass for its status code (`NotFound`,
  `Conflict`, `InvalidRequest`, ...), carrying the server's one-line message (its `result`)
  and its machine-readable `error.code`;
- a step that ends `failed` while you wait for it raises `StepFailed` (`StepCancelled` when
  it was cancelled), carrying the step's own `exception` text;
- a wait that outlives its overall timeout raises `WaitTimeout`, also a `TimeoutError`;
- a server that cannot be reached raises `ConnectionFailed`.
"""

from __future__ import annotations

from typing import Any


class LearningOrchestraError(Exception):
    """Base class of every error raised by `learning_orchestra_client`.

    Attributes:
        message: the human-readable message (the server's `result` for HTTP errors).
        status_code: the HTTP status of the answer, or None when there was no answer.
        code: the server's `error.code` (e.g. ``"not_found"``, ``"name_taken"``), or None.
        detail: the server's `error.detail` (e.g. the field at fault), or None.
        body: the decoded JSON body of the answer, or None.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        detail: Any = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.detail = detail
        self.body = body

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, status_code={self.status_code!r}, "
            f"code={self.code!r})"
        )


class ConnectionFailed(LearningOrchestraError):
    """The server could not be reached, or did not answer in time."""


class BadRequest(LearningOrchestraError):
    """HTTP 400: the request was malformed (e.g. JSON that does not parse)."""


class Unauthorized(LearningOrchestraError):
    """HTTP 401: the token is missing or not accepted (pass ``token=`` to the constructor)."""


class NotFound(LearningOrchestraError):
    """HTTP 404: no step by that name, or no such route."""


class MethodNotAllowed(LearningOrchestraError):
    """HTTP 405: the route exists but does not accept this method."""


class Conflict(LearningOrchestraError):
    """HTTP 409: the name is already taken, or the step is busy."""


class PayloadTooLarge(LearningOrchestraError):
    """HTTP 413: the body or the uploaded file is larger than the server accepts."""


class InvalidRequest(LearningOrchestraError):
    """HTTP 422: the request is well-formed but a field is invalid; `detail` names it."""


class ServerError(LearningOrchestraError):
    """HTTP 5xx: the server (or a gateway in front of it) failed."""


#: Step types that cannot be re-run (PATCH answers 405), and how to run them again.
NOT_RERUNNABLE = {
    "builder/sparkml": "delete the builder's outputs and run it again (REST: DELETE each "
    "output, then POST)",
}


class StepFailed(LearningOrchestraError):
    """A step you waited for ended ``failed``.

    Attributes:
        name: the step's name.
        status: the step's final status (``"failed"``, or ``"cancelled"`` for `StepCancelled`).
        exception: the step's `exception` text as the server recorded it.
        traceback: the step's `traceback`, when the server kept one.
        metadata: the whole metadata document of the step.
    """

    def __init__(self, name: str, metadata: dict[str, Any], *, note: str = "") -> None:
        self.name = name
        self.metadata = metadata
        self.status = str(metadata.get("status") or "failed")
        exception = metadata.get("exception")
        self.exception: str | None = None if exception is None else str(exception)
        self.traceback: str | None = metadata.get("traceback")
        reason = self.exception or "no reason recorded"
        said = f"step '{name}' {self.status}" + (f", {note}" if note else "")
        super().__init__(f"{said}: {reason}", body=metadata)

    def __str__(self) -> str:
        """The step's error, then where it happened — the server's traceback, the frames of
        the step's own code first — then what to do about it."""
        text = self.message
        if self.traceback:
            text += (
                "\n\nWhere, in the step's code (the server's traceback):\n"
                + self.traceback.rstrip()
            )
        if self.status == "failed":
            again = NOT_RERUNNABLE.get(
                str(self.metadata.get("type")),
                "re-run the step with its parameters changed (Orchestra: step.rerun(...); "
                "REST: PATCH)",
            )
            text += f"\n\nHint: fix the cause and {again}, or read what it printed (step.logs())."
        return text


class StepCancelled(StepFailed):
    """A step you waited for ended ``cancelled``."""


class WaitTimeout(LearningOrchestraError, TimeoutError):
    """A wait lasted longer than its overall ``timeout`` and the step had not ended.

    Attributes:
        name: the step's name.
        timeout: the overall timeout in seconds.
        metadata: the last metadata seen while waiting, when there was one.
    """

    def __init__(
        self,
        name: str,
        timeout: float,
        metadata: dict[str, Any] | None = None,
        *,
        waiting_for: str = "end",
    ) -> None:
        self.name = name
        self.timeout = timeout
        self.metadata = metadata
        status = f" (last status: {metadata.get('status')})" if metadata else ""
        super().__init__(
            f"step '{name}' did not {waiting_for} within {timeout:g} s{status}", status_code=408
        )


#: The exception class for each HTTP status the server documents.
STATUS_ERRORS: dict[int, type[LearningOrchestraError]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: PayloadTooLarge,
    422: InvalidRequest,
}


def error_for_status(status_code: int) -> type[LearningOrchestraError]:
    """The exception class raised for an answer with HTTP status `status_code`."""
    if status_code >= 500:
        return ServerError
    return STATUS_ERRORS.get(status_code, LearningOrchestraError)


__all__ = [
    "STATUS_ERRORS",
    "BadRequest",
    "Conflict",
    "ConnectionFailed",
    "InvalidRequest",
    "LearningOrchestraError",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "ServerError",
    "StepCancelled",
    "StepFailed",
    "Unauthorized",
    "WaitTimeout",
    "error_for_status",
]

"""`/tune/autokeras`: there is none, and every method on it answers a 404 that says why.

AutoKeras has no tuning stage apart from its training: `fit` of a task is the architecture
and hyper-parameter search (`max_trials` on the model step), so the search runs in
`train/autokeras` (API.md, "Routes and bodies"). The route exists only to say so instead of
the generic "no such route".
"""

from __future__ import annotations

from fastapi import APIRouter

from ...core.errors import NotFound
from ...core.routes import ERRORS

MESSAGE = (
    "tune/autokeras does not exist: AutoKeras searches architectures and hyper-parameters in "
    "its fit, so the search runs in train/autokeras (POST /train/autokeras with method "
    "'fit'; max_trials is set on the model/autokeras step)"
)

router = APIRouter(prefix="/tune/autokeras", tags=["tune"], responses=ERRORS)
METHODS = ["GET", "POST", "PATCH", "DELETE"]


@router.api_route("", methods=METHODS, include_in_schema=False)
@router.api_route("/{rest:path}", methods=METHODS, include_in_schema=False)
async def no_tune_autokeras() -> None:
    """Every request to /tune/autokeras[/...]: a 404 saying the search is train/autokeras."""
    raise NotFound(MESSAGE, {"route": "tune/autokeras", "use": "train/autokeras"})

"""The checked-in `openapi.yaml`: generated from the embedded app (every service)."""

from __future__ import annotations

from typing import Any

import yaml


def openapi_document() -> dict[str, Any]:
    from .api import create_app

    document: dict[str, Any] = create_app().openapi()
    return document


def openapi_yaml() -> str:
    return yaml.safe_dump(openapi_document(), sort_keys=False, allow_unicode=True, width=100)

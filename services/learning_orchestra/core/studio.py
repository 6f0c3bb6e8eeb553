"""The Studio (`/studio/`): a live web view of pipelines, served by every app like `/docs`.

The page and its ES modules are files of the package (`learning_orchestra/studio/`, package
data in pyproject.toml), served from there: no CDN, no build step, so the studio works
offline and behind the gateway (whose KrakenD file lists the assets one by one, a static
mount's files, gateway.py). The page talks to the public REST API like any client, so it
needs no route of its own: the page and its assets need no token (the page asks for one when
the API answers 401) and stay out of the OpenAPI document.

Every answer carries `SECURITY_HEADERS`: a Content-Security-Policy that lets the page load and
call only its own origin, with no inline script or style (the step names, logs and
tracebacks it shows are other people's text), `nosniff` so that a file is only ever run as
the type it is served as, a referrer policy that keeps the studio's URLs to itself
(`same-origin`: `no-referrer` would make browsers send `Origin: null` with the page's own
writes, which core/edge.py refuses), and `no-cache` so that after an upgrade the browser
revalidates (a cheap 304) instead of mixing old and new modules.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from .errors import NotFound

STUDIO_PATH = "/studio"
ASSETS_PATH = "/studio/assets"
ASSETS_NAME = "studio-assets"
INDEX = "index.html"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}
#: Types by suffix where the platform's `mimetypes` may guess wrong or not at all (Python
#: 3.11 without /etc/mime.types: `.mjs` unknown): with `nosniff` a browser refuses to run a
#: module or apply a style sheet served with another type. The vendored libraries' licences
#: and notes (`LICENSE-htm`, `README.md`) are shown as text, not downloaded.
MEDIA_TYPES = {
    "": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".map": "application/json",
    ".md": "text/plain; charset=utf-8",
}


def studio_directory() -> Path:
    """The folder of the studio's page and assets, inside the installed package."""
    return Path(str(resources.files("learning_orchestra") / "studio"))


class StudioFiles(StaticFiles):
    """The studio's assets, each answer with `SECURITY_HEADERS` and its type (`MEDIA_TYPES`).

    A StaticFiles still (gateway.py lists a static mount's files for KrakenD)."""

    def file_response(self, full_path: Any, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(full_path, *args, **kwargs)
        media_type = MEDIA_TYPES.get(Path(str(full_path)).suffix.lower())
        if media_type is not None and response.status_code == 200:
            response.headers["Content-Type"] = media_type
        response.headers.update(SECURITY_HEADERS)
        return response


def install_studio(app: FastAPI) -> None:
    """Serve the studio on `app`: `/studio/` (the page), `/studio` (a redirect there) and
    `/studio/assets/...` (its files), with no token and outside the OpenAPI document."""
    folder = studio_directory()
    # check_dir=False: an app still builds (serves its API) where the folder is missing;
    # the page then answers 404 saying why
    app.mount(ASSETS_PATH, StudioFiles(directory=folder, check_dir=False), name=ASSETS_NAME)

    @app.get(STUDIO_PATH, include_in_schema=False)
    async def studio_redirect(request: Request) -> RedirectResponse:
        # the page's relative asset URLs (assets/app.js) resolve under /studio/ only; behind
        # a proxy that strips a prefix, the URL must carry it (root_path, as core/docs.py)
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return RedirectResponse(f"{root}{STUDIO_PATH}/", status_code=307)

    @app.get(f"{STUDIO_PATH}/", include_in_schema=False)
    async def studio_page() -> FileResponse:
        page = folder / INDEX
        if not page.is_file():
            raise NotFound(
                f"the studio's files are not installed ({page} is missing): reinstall "
                "learning-orchestra (its package data holds them)"
            )
        return FileResponse(page, media_type="text/html", headers=SECURITY_HEADERS)

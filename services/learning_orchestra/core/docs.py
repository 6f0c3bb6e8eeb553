"""The interactive API docs (`/docs`: Swagger UI, `/redoc`: ReDoc), served without a CDN.

FastAPI's own docs pages load Swagger UI and ReDoc from a CDN, so `/docs` is a blank page on a
machine without internet (a laptop on a train, an air-gapped cluster). The `fastapi-offline`
package ships both bundles (MIT, like Swagger UI and ReDoc themselves); the app serves them
from `ASSETS_PATH` and its docs pages reference only those local URLs. The pages and the
assets stay out of the OpenAPI document, and `/` redirects to `/docs`.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
ASSETS_PATH = "/docs/assets"


def assets_directory() -> str:
    """The folder of `fastapi-offline`'s Swagger UI and ReDoc bundles (and a favicon)."""
    return str(resources.files("fastapi_offline") / "static")


def install_docs(app: FastAPI) -> None:
    """Serve `/docs`, `/redoc`, their assets and the `/` redirect on `app`.

    `app` must be built with `docs_url=None, redoc_url=None` (FastAPI's CDN pages)."""
    app.mount(ASSETS_PATH, StaticFiles(directory=assets_directory()), name="docs-assets")

    def base(request: Request) -> str:
        # behind a proxy that strips a prefix, the URLs must carry it (root_path)
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get("/", include_in_schema=False)
    async def root(request: Request) -> RedirectResponse:
        return RedirectResponse(f"{base(request)}{DOCS_PATH}", status_code=307)

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = base(request)
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} — Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get(REDOC_PATH, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = base(request)
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} — ReDoc",
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,  # fonts from Google: not offline
        )

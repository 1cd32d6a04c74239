"""/docs (Swagger UI) and /redoc (ReDoc) with their JavaScript and CSS served by this server.

FastAPI's default pages load them from a public CDN and stay blank without internet; this is
FastAPI's documented self-hosting recipe, with the bundles of the pinned `fastapi-offline` package.
ReDoc's bundle also shows a "powered by" logo from its CDN: it is served with an empty image
instead, so that the page asks nothing of the internet.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs-assets"
REDOC_BUNDLE = "redoc.standalone.js"
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
NO_IMAGE = b"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='0' height='0'/%3E"


@cache
def _redoc_bundle() -> bytes:
    return (ASSETS_DIR / REDOC_BUNDLE).read_bytes().replace(REDOC_LOGO, NO_IMAGE)


def install_docs(app: FastAPI) -> None:
    """Add /docs, /redoc and their assets; `app` is built with docs_url=None, redoc_url=None."""

    @app.get(f"{ASSETS_URL}/{REDOC_BUNDLE}", include_in_schema=False)  # before the mount below
    async def redoc_bundle() -> Response:
        return Response(_redoc_bundle(), media_type="text/javascript")

    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    title = app.title

    def urls(request: Request) -> tuple[str, str]:
        root = request.scope.get("root_path", "")
        return f"{root}{app.openapi_url}", f"{root}{ASSETS_URL}"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        openapi_url, assets = urls(request)
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        openapi_url, assets = urls(request)
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title} - ReDoc",
            redoc_js_url=f"{assets}/{REDOC_BUNDLE}",
            redoc_favicon_url=f"{assets}/favicon.png",
            with_google_fonts=False,
        )

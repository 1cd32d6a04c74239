"""Dependencies shared by the routes.

All are `async def`: none blocks, and FastAPI runs a plain `def` dependency in its thread pool,
a thread hand-off per dependency per request that competes with the inference threads for the
cores.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request

from qa_api.config import Settings
from qa_api.errors import ApiError
from qa_api.inference.errors import InputTooLargeError, clip
from qa_api.inference.registry import ModelRegistry
from qa_api.metrics import Metrics
from qa_api.service import AnswerService, Gone


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_models(request: Request) -> ModelRegistry:
    return request.app.state.models  # type: ignore[no-any-return]


async def get_service(request: Request) -> AnswerService:
    return request.app.state.service  # type: ignore[no-any-return]


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


async def client_gone(request: Request) -> Gone:
    """Waits for the client's disconnect on the ASGI receive channel (the body is read by then)."""

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    return disconnected


async def require_api_key(
    settings: Annotated[Settings, Depends(get_settings)],
    x_api_key: Annotated[str | None, Header(description="Needed when QA_API_KEY is set.")] = None,
) -> None:
    expected = settings.api_key
    if expected is None:
        return
    if x_api_key is None or not secrets.compare_digest(
        x_api_key.encode(), expected.get_secret_value().encode()
    ):
        raise ApiError(401, "unauthorized", "Missing or wrong API key: send header X-API-Key.")


def batch_limit(field: str) -> Callable[..., Awaitable[None]]:
    """Refuse a body whose `field` list is over QA_MAX_BATCH_ITEMS before its items are validated
    one by one: 4 MiB of `{}` is a million items, and a million errors to list."""

    async def check(request: Request, settings: SettingsDep) -> None:
        try:
            body = await request.json()  # FastAPI has parsed it already; this is its cache
        except ValueError:
            return  # no JSON body: the body's own validation says so
        items = body.get(field) if isinstance(body, dict) else None
        if isinstance(items, list) and len(items) > settings.max_batch_items:
            raise InputTooLargeError(
                f"{len(items)} items in one call; the limit is {settings.max_batch_items} "
                "(QA_MAX_BATCH_ITEMS). Split the batch."
            )

    return check


async def require_json(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    mime = content_type.split(";")[0].strip().lower()
    # what FastAPI reads as JSON: application/json and application/*+json (not text/json)
    if not (
        mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))
    ):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Type is '{clip(content_type) or 'missing'}'; send JSON with "
            "'Content-Type: application/json'.",
        )


Service = Annotated[AnswerService, Depends(get_service)]
ClientGone = Annotated[Gone, Depends(client_gone)]
Models = Annotated[ModelRegistry, Depends(get_models)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]

"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from qa_api.api.deps import MetricsDep, Models
from qa_api.schemas import Liveness, Readiness

router = APIRouter(tags=["health"])


# HEAD too (load balancers and uptime checkers probe with it), left out of the schema: one
# operation per path there.
@router.head("/health/live", include_in_schema=False)
@router.get("/health/live", summary="The process is up")
async def live() -> Liveness:
    return Liveness()


@router.head("/health/ready", include_in_schema=False)
@router.get(
    "/health/ready",
    summary="Every model is loaded and warmed up",
    responses={503: {"model": Readiness, "description": "Loading, or a model failed to load"}},
)
async def ready(models: Models, response: Response) -> Readiness:
    states = {m.name: m.status for m in models.models.values()}
    if models.ready:
        return Readiness(status="ready", models=states)
    response.status_code = 503
    failed = [m for m in models.models.values() if m.status == "failed"]
    if failed:
        reason = "; ".join(f"{m.name}: {m.error}" for m in failed)
        return Readiness(status="failed", models=states, reason=reason)
    return Readiness(status="loading", models=states, reason="models are loading")


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(models: Models, metrics: MetricsDep) -> Response:
    return Response(metrics.render(models), media_type=CONTENT_TYPE_LATEST)

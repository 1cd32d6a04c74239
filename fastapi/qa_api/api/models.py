"""Model listing and the TF Serving / KServe V1 style predict endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException

from qa_api.api.deps import (
    ClientGone,
    Models,
    Service,
    SettingsDep,
    batch_limit,
    require_api_key,
    require_json,
)
from qa_api.api.responses import ERROR_RESPONSES
from qa_api.config import Settings
from qa_api.inference.registry import ServedModel
from qa_api.inference.types import QAOptions
from qa_api.schemas import (
    ModelInfo,
    ModelLimits,
    ModelList,
    PredictRequest,
    PredictResponse,
    QARequest,
)

router = APIRouter(
    prefix="/v1/models",
    tags=["models"],
    dependencies=[Depends(require_api_key)],
    responses=ERROR_RESPONSES,
)


def model_limits(settings: Settings, defaults: QAOptions) -> ModelLimits:
    """What a client may send to a model with these decoding defaults."""
    return ModelLimits(
        top_k=defaults.top_k,
        max_seq_len=defaults.max_seq_len,
        doc_stride=defaults.doc_stride,
        max_question_len=settings.max_question_len,
        max_answer_len=defaults.max_answer_len,
        max_context_chars=settings.max_context_chars,
        max_document_chars=settings.max_document_chars,
        passages_top_n=settings.passages_top_n,
        max_question_chars=settings.max_question_chars,
        max_top_k=settings.max_top_k,
        max_batch_items=settings.max_batch_items,
    )


def _info(model: ServedModel, settings: Settings) -> ModelInfo:
    return ModelInfo(
        name=model.name,
        model_id=model.source,
        revision=model.revision,
        status=model.status,
        ready=model.status == "ready",
        error=model.error,
        backend=model.backend,
        device=model.device,
        dtype=model.dtype,
        load_time_s=model.load_time_s,
        default=model.name == settings.default_model,
        limits=model_limits(settings, model.defaults),
    )


@router.get("", summary="List the served models")
async def list_models(models: Models, settings: SettingsDep) -> ModelList:
    return ModelList(
        default=models.default, models=[_info(m, settings) for m in models.models.values()]
    )


@router.get("/{name}", summary="Describe one model")
async def get_model(name: str, models: Models, settings: SettingsDep) -> ModelInfo:
    if name.endswith(":predict"):  # names have no ':' (QA_MODELS): the method is wrong
        raise HTTPException(405, headers={"Allow": "POST"})  # the router's 405, said alike
    return _info(models.get(name), settings)


@router.post(
    "/{name}:predict",
    summary="TF Serving style prediction",
    dependencies=[Depends(require_json), Depends(batch_limit("instances"))],
)
async def predict(
    name: str, body: PredictRequest, service: Service, models: Models, gone: ClientGone
) -> PredictResponse:
    """`{"instances": [{"context", "question"}]}` -> `{"predictions": [...]}`."""
    models.get(name)  # the path's model: its 404 is the call's, not its first item's
    requests = [
        QARequest(context=i.context, question=i.question, model=name) for i in body.instances
    ]
    return PredictResponse(predictions=await service.answer(requests, gone))

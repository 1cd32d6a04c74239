"""The served models: where their files come from, their loading state, and their runtimes."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from qa_api.inference.backends import BackendName, load_backend, resolve_backend, resolve_device
from qa_api.inference.contexts import ContextCache
from qa_api.inference.errors import ModelNotFoundError, ModelNotReadyError, clip
from qa_api.inference.pipeline import Pipeline
from qa_api.inference.runtime import QARuntime
from qa_api.inference.scheduler import Scheduler, SchedulerConfig, SchedulerObserver
from qa_api.inference.types import QAOptions, QAQuery

logger = logging.getLogger(__name__)

LOADING_RETRY_AFTER_S = 5  # Retry-After of a request that arrives while its model loads

Status = Literal["loading", "ready", "failed"]
MODEL_FILES = ["*.json", "vocab.txt", "*.model", "*.safetensors"]
WARMUP_QUESTION = "¿Quién escribió Don Quijote de la Mancha?"
WARMUP_CONTEXT = "Don Quijote de la Mancha es una novela escrita por Miguel de Cervantes Saavedra."


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """How models are loaded; built by `Settings.load_config()`, which holds the defaults."""

    backend: BackendName
    device: str
    threads: int
    onnx_cache_dir: Path
    max_question_len: int
    pad_to_multiple_of: int
    warmup: bool


@dataclass
class ServedModel:
    """One configured model and what is known about it so far."""

    name: str
    source: str  # Hugging Face id or local directory
    defaults: QAOptions
    status: Status = "loading"
    error: str | None = None
    revision: str | None = None
    backend: str | None = None
    device: str | None = None
    dtype: str | None = None
    load_time_s: float | None = None
    runtime: QARuntime | None = field(default=None, repr=False)


def fetch_model_files(source: str) -> tuple[Path, str]:
    """Local directory holding the model, and its revision (hub commit or 'local')."""
    local = Path(source).expanduser()
    if local.is_dir():
        return local, "local"
    if source.startswith(("/", ".", "~")):
        raise FileNotFoundError(
            f"model directory {source} does not exist (check the path, and with Docker "
            "that MODELS_DIR mounts it)"
        )
    from huggingface_hub import snapshot_download

    path = Path(snapshot_download(source, allow_patterns=MODEL_FILES))
    if not any(path.glob("*.safetensors")):  # older repositories ship only a pickle
        path = Path(snapshot_download(source, allow_patterns=[*MODEL_FILES, "pytorch_model.bin"]))
    return path, path.name


def unreadable_files(model_dir: Path) -> list[Path]:
    """The directory itself when this process may not list it, else its files it may not read."""
    if not os.access(model_dir, os.R_OK | os.X_OK):
        return [model_dir]
    return sorted(p for p in model_dir.iterdir() if p.is_file() and not os.access(p, os.R_OK))


def check_readable(model_dir: Path) -> None:
    """Name the unreadable file, this process's uid and the fix before transformers opens any.

    transformers reports a file it may not read as "No such file or directory" (EACCES is lost),
    and `save_pretrained` writes model.safetensors with mode 0600.
    """
    denied = unreadable_files(model_dir)
    if denied:
        more = f" (and {len(denied) - 1} more)" if len(denied) > 1 else ""
        raise PermissionError(
            f"permission denied: {denied[0]}{more} is not readable by uid {os.getuid()}, the user "
            f"this service runs as. Fix: chmod -R a+rX {model_dir} (on the host's copy when the "
            "directory is mounted)"
        )


class ModelRegistry:
    """Loads every configured model (in the background) and hands out their runtimes."""

    def __init__(
        self,
        models: dict[str, str],
        default: str,
        defaults: QAOptions,
        load: LoadConfig,
        scheduling: SchedulerConfig,
        observer: SchedulerObserver | None = None,
        contexts: ContextCache | None = None,
    ) -> None:
        self.default = default
        self.contexts = contexts  # tokenized contexts, shared by the models (keyed by name)
        self.models = {name: ServedModel(name, src, defaults) for name, src in models.items()}
        self._load = load
        # One scheduler, so one inference thread, runs every model (scheduler.py says why).
        self.scheduler = Scheduler(scheduling, observer)

    # -- lifecycle --------------------------------------------------------------------------

    def start_loading(self) -> threading.Thread:
        """Load all models in a background thread, so the server answers health checks meanwhile.

        Loading runs on its own short-lived thread in any case: the OpenMP pool that torch starts
        for it ends with the thread and never competes with the inference worker's.
        """
        loader = threading.Thread(target=self._load_each, name="qa-model-loader", daemon=True)
        loader.start()
        return loader

    def load_all(self) -> None:
        """Load all models and return when each is ready or failed."""
        self.start_loading().join()

    def close(self, timeout: float | None = None) -> None:
        """Finish the admitted requests for up to `timeout` s, drop the rest, stop the threads."""
        self.scheduler.close(timeout)

    def _load_each(self) -> None:
        for model in self.models.values():
            self._load_one(model)

    def _load_one(self, model: ServedModel) -> None:
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        started = time.perf_counter()
        try:
            model_dir, model.revision = fetch_model_files(model.source)
            check_readable(model_dir)
            tokenizer = AutoTokenizer.from_pretrained(model_dir)
            if not tokenizer.is_fast:
                raise ValueError("the model has no fast tokenizer (tokenizer.json) for offsets")
            device = resolve_device(self._load.device)
            backend = load_backend(
                model_dir,
                resolve_backend(self._load.backend, device),
                device,
                self._load.threads,
                self._load.onnx_cache_dir,
            )
            pipeline = Pipeline(
                model.name,
                tokenizer,
                backend,
                self._load.max_question_len,
                self._load.pad_to_multiple_of,
                self.contexts,
            )
            runtime = QARuntime(pipeline, self.scheduler)
            if self._load.warmup:
                runtime.warm_up_shapes(model.defaults.max_seq_len)
                runtime.answer(QAQuery(WARMUP_QUESTION, WARMUP_CONTEXT, model.defaults))
        except Exception as exc:
            model.status, model.error = "failed", f"{type(exc).__name__}: {exc}"[:500]
            logger.exception("model %s (%s) failed to load", model.name, model.source)
            return
        model.backend, model.device, model.dtype = backend.name, backend.device, backend.dtype
        model.runtime = runtime
        model.load_time_s = time.perf_counter() - started
        model.status = "ready"
        logger.info(
            "model %s ready: %s on %s in %.1fs", model.name, backend.name, device, model.load_time_s
        )

    # -- lookup -----------------------------------------------------------------------------

    def get(self, name: str | None) -> ServedModel:
        key = name or self.default
        if key not in self.models:
            served = ", ".join(sorted(self.models))
            raise ModelNotFoundError(f"Unknown model '{clip(key)}'. Served models: {served}.")
        return self.models[key]

    def runtime(self, name: str | None) -> tuple[ServedModel, QARuntime]:
        model = self.get(name)
        return model, self.runtime_of(model)

    def runtime_of(self, model: ServedModel) -> QARuntime:
        """The model's runtime, or ModelNotReadyError saying why there is none."""
        if model.runtime is None:
            if model.status == "failed":
                raise ModelNotReadyError(f"Model '{model.name}' is not ready: {model.error}")
            raise ModelNotReadyError(
                f"Model '{model.name}' is not ready: it is still loading; retry soon",
                retry_after_s=LOADING_RETRY_AFTER_S,
            )
        return model.runtime

    @property
    def ready(self) -> bool:
        return all(model.status == "ready" for model in self.models.values())

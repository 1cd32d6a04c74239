"""UI settings, read from environment variables with the prefix ``QA_UI_``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from urllib.parse import urlsplit

ENV_PREFIX = "QA_UI_"


class SettingsError(ValueError):
    """A ``QA_UI_*`` variable holds a value the UI cannot use."""


@dataclass(frozen=True)
class UISettings:
    """Everything the UI needs to know about its environment."""

    backend_url: str = "http://fastapi:8008"
    """Where the UI server reaches the backend (compose service name by default)."""
    public_api_url: str = "http://localhost:8008"
    """Backend address as the user's browser sees it (docs link, "copy as curl")."""
    timeout_s: float = 30.0
    """Read timeout of one answer request."""
    connect_timeout_s: float = 3.0
    health_timeout_s: float = 3.0
    api_key: str | None = None
    """Sent as ``X-API-Key`` when set."""
    resolve_interval_s: float = 5.0
    """How often the backend host name is re-resolved to find replicas."""
    max_upload_mb: float = 10.0
    top_k: int = 3
    """Answers the UI asks for until the user moves the slider (the UI's own choice: it shows
    alternatives; the backend's QA_MAX_TOP_K caps it, its QA_TOP_K serves other clients)."""

    def __post_init__(self) -> None:
        for name in ("backend_url", "public_api_url"):
            url = getattr(self, name)
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise SettingsError(
                    f"{ENV_PREFIX}{name.upper()} must be an http(s) URL, got {url!r}"
                )
        for name in ("timeout_s", "connect_timeout_s", "health_timeout_s", "max_upload_mb"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be > 0")
        if self.top_k < 1:
            raise SettingsError(f"{ENV_PREFIX}TOP_K must be >= 1")
        if self.resolve_interval_s < 0:
            raise SettingsError(f"{ENV_PREFIX}RESOLVE_INTERVAL_S must be >= 0")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> UISettings:
        """Build settings from ``QA_UI_*`` variables; unset or empty ones keep their default."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper(), "").strip()
            if not raw:
                continue
            if f.name in ("backend_url", "public_api_url"):
                values[f.name] = raw.rstrip("/")
            elif f.name == "api_key":
                values[f.name] = raw
            else:
                number = int if f.type == "int" else float
                try:
                    values[f.name] = number(raw)
                except ValueError as exc:
                    raise SettingsError(
                        f"{ENV_PREFIX}{f.name.upper()} must be a number, got {raw!r}"
                    ) from exc
        return cls(**values)  # type: ignore[arg-type]

"""The backend's served defaults for tests that build runtime objects themselves."""

from __future__ import annotations

import dataclasses
from typing import Any

from qa_api.config import Settings
from qa_api.inference.types import QAOptions


def served_options(**overrides: Any) -> QAOptions:
    """`Settings().decoding_defaults()` with `overrides`: a test names only what it varies."""
    return dataclasses.replace(Settings().decoding_defaults(), **overrides)

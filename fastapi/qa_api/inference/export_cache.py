"""Model conversions cached on disk: one folder per model version, filled by a child process.

A conversion needs several GiB that the server should not keep, so it runs in a child process
(`python -m <module> model_dir cache_dir [flags]`). Files are written under a temporary name and
moved into place last, so concurrent replicas never read half a file.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


def model_key(model_dir: Path, *versions: str) -> str:
    """Stable key for the model files (resolved path; name, size and mtime of each file) and the
    versions of the tools that convert them."""
    digest = hashlib.sha256(str(model_dir.resolve()).encode())
    for path in sorted(p for p in model_dir.iterdir() if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    digest.update(":".join(versions).encode())
    return digest.hexdigest()[:16]


def convert_once(target: Path, module: str, args: list[str], what: str) -> Path:
    """`target` if it is cached, else run `python -m module *args` to write it, then `target`."""
    if target.exists():
        logger.info("using cached %s %s", what, target)
        return target
    logger.info("converting the model to %s (once; cached in %s)", what, target.parent)
    done = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True)
    if done.returncode != 0 or not target.exists():
        raise RuntimeError(f"{what} conversion failed: {done.stderr.strip()[-1000:]}")
    return target


def traceable_model(model_dir: Path) -> torch.nn.Module:
    """The fp32 torch QA model as a module returning (start_logits, end_logits), for tracers."""
    import torch
    from transformers import AutoModelForQuestionAnswering

    model = AutoModelForQuestionAnswering.from_pretrained(model_dir, dtype=torch.float32).eval()

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.start_logits, out.end_logits

    return Logits().eval()

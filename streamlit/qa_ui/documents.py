"""Text extraction from uploaded .txt, .md and .pdf files."""

from __future__ import annotations

import io
import re
from pathlib import PurePath

from pypdf import PdfReader
from pypdf.errors import PyPdfError

SUPPORTED_SUFFIXES = ("txt", "md", "pdf")


class DocumentError(ValueError):
    """An upload gives no usable text; ``code`` names the texts.py message (upload_<code>)."""

    def __init__(self, code: str, reason: str = "") -> None:
        super().__init__(reason or code)
        self.code = code
        self.reason = reason


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Spanish texts saved by older Windows tools are usually cp1252.
        return data.decode("cp1252", errors="replace")


def _pdf_text(data: bytes) -> str:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError("unreadable", "the PDF is password protected")
        return "\n\n".join(page.extract_text() or "" for page in reader.pages)
    except (PyPdfError, ValueError, KeyError, OSError) as exc:
        if isinstance(exc, DocumentError):
            raise
        raise DocumentError("unreadable", str(exc) or type(exc).__name__) from exc


def extract_text(filename: str, data: bytes) -> str:
    """The plain text of an uploaded file, whitespace tidied, or a DocumentError."""
    suffix = PurePath(filename).suffix.lower().lstrip(".")
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError("unsupported")
    text = _pdf_text(data) if suffix == "pdf" else _decode(data)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    if not text:
        raise DocumentError("empty")
    return text

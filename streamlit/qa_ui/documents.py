"""Text extraction from uploaded .txt, .md and .pdf files; a PDF keeps where each page starts."""

from __future__ import annotations

import bisect
import codecs
import io
import re
from dataclasses import dataclass
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


# A text file's characters other than these controls; more than this share of others: binary.
TEXT_CONTROLS = frozenset("\t\n\r\f\v")
MAX_CONTROL_SHARE = 0.01


def _decode(data: bytes) -> str:
    """By its byte order mark (Notepad's "Unicode" is UTF-16), else UTF-8, else cp1252."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise DocumentError("unreadable", "invalid UTF-16 text") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Spanish texts saved by older Windows tools are usually cp1252.
        return data.decode("cp1252", errors="replace")


def _looks_binary(text: str) -> bool:
    """NUL bytes or control characters a text file does not have (an image, a .docx renamed)."""
    if "\x00" in text:
        return True
    odd = sum(1 for c in text if c == "\ufffd" or (c < " " and c not in TEXT_CONTROLS))
    return odd > MAX_CONTROL_SHARE * len(text)


@dataclass(frozen=True)
class Document:
    """An upload's text; for a PDF, the character offset where each page's text starts."""

    text: str
    # One per page, in order; an empty page starts where the next does.
    page_starts: tuple[int, ...] = ()

    def page_of(self, offset: int) -> int | None:
        """The 1-based page holding the character at `offset` (None: not a paged document)."""
        if not self.page_starts or not 0 <= offset < len(self.text):
            return None
        return bisect.bisect_right(self.page_starts, offset)


def _pdf_pages(data: bytes) -> list[str]:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError("unreadable", "the PDF is password protected")
        return [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, OSError) as exc:
        if isinstance(exc, DocumentError):
            raise
        raise DocumentError("unreadable", str(exc) or type(exc).__name__) from exc


def _tidy(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _join_pages(pages: list[str]) -> Document:
    """Pages tidied one by one and joined by a blank line, each page's start kept."""
    text = ""
    starts: list[int] = []
    pending = 0  # empty pages waiting for the start of the next page with text
    for page in map(_tidy, pages):
        if not page:
            pending += 1
            continue
        if text:
            text += "\n\n"
        starts += [len(text)] * (pending + 1)
        pending = 0
        text += page
    return Document(text, tuple(starts + [len(text)] * pending))


def extract_document(filename: str, data: bytes) -> Document:
    """The plain text of an uploaded file, whitespace tidied (pages kept), or a DocumentError."""
    suffix = PurePath(filename).suffix.lower().lstrip(".")
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError("unsupported")
    if suffix == "pdf":
        document = _join_pages(_pdf_pages(data))
        if not document.text:
            raise DocumentError("no_text")  # pages without text: a scanned PDF, most often
        return document
    text = _decode(data)
    if _looks_binary(text):
        raise DocumentError("binary")
    document = Document(_tidy(text))
    if not document.text:
        raise DocumentError("empty")
    return document


def extract_text(filename: str, data: bytes) -> str:
    """The plain text of an uploaded file (see extract_document)."""
    return extract_document(filename, data).text

"""Form bodies (urlencoded and multipart) read under limits of our own, each refused with a 413
that names it. Read through Starlette, python-multipart's and Starlette's form limits (part size,
field count, part headers, boundary length) would all answer a generic 400."""

from __future__ import annotations

import sys
from urllib.parse import unquote_plus

from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import (
    MAX_BOUNDARY_LENGTH,
    MultipartParser,
    MultipartState,
    QuerystringParser,
    parse_options_header,
)

from qa_api.errors import ApiError
from qa_api.inference.errors import clip

# A part's size needs no limit of its own: the body's (QA_MAX_BODY_BYTES) bounds it.
MAX_FORM_FIELDS = 16
MAX_PART_HEADERS = 8
MAX_PART_HEADER_BYTES = 4096
FORM_TYPES = (b"application/x-www-form-urlencoded", b"multipart/form-data")
_FIELDS_HINT = "Send the form fields 'context' and 'question' (urlencoded or multipart/form-data)."


def _too_large(what: str, limit: int) -> ApiError:
    return ApiError(
        413, "payload_too_large", f"The form has {what}; the limit is {limit}. {_FIELDS_HINT}"
    )


def _malformed(reason: str) -> ApiError:
    return ApiError(400, "invalid_body", f"The form could not be parsed: {reason}. {_FIELDS_HINT}")


class _Fields:
    """Collects the form's fields (the last one of a name wins), counting them as they come."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.name = bytearray()
        self.value = bytearray()

    def add(self, name: str, value: str) -> None:
        self.values[name] = value
        if len(self.values) > MAX_FORM_FIELDS:
            raise _too_large(f"more than {MAX_FORM_FIELDS} fields", MAX_FORM_FIELDS)
        self.name.clear()
        self.value.clear()


async def read_form(request: Request) -> dict[str, str]:
    """The form fields of a urlencoded or multipart body as text; {} when there is no body.

    Any other body (JSON, above all) is a 415: its fields would be ignored without a word.
    """
    content_type, params = parse_options_header(request.headers.get("content-type"))
    if content_type not in FORM_TYPES:
        if await request.body():
            sent = content_type.decode("latin-1") or "no Content-Type"
            raise ApiError(
                415,
                "unsupported_media_type",
                f"/qas/ reads form fields or query parameters; the body sent is {clip(sent)}. "
                f"{_FIELDS_HINT} Or send ?context=...&question=..., or JSON to POST /v1/qa.",
            )
        return {}
    fields = _Fields()
    if content_type == FORM_TYPES[0]:
        parser: QuerystringParser | MultipartParser = _urlencoded_parser(fields)
    else:
        parser = _multipart_parser(params.get(b"boundary"), fields)
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise _malformed(str(exc)) from None
    # python-multipart's finalize does not check that the body reached its closing boundary.
    if isinstance(parser, MultipartParser) and parser.state != MultipartState.END:
        raise _malformed(
            "the multipart body ends before its closing boundary (--BOUNDARY--); it was cut short"
        )
    return fields.values


def _urlencoded_parser(fields: _Fields) -> QuerystringParser:
    def on_field_name(data: bytes, start: int, end: int) -> None:
        fields.name += data[start:end]

    def on_field_data(data: bytes, start: int, end: int) -> None:
        fields.value += data[start:end]

    def on_field_end() -> None:
        # Percent escapes are UTF-8; broken ones become U+FFFD, as in query strings.
        name, value = (unquote_plus(b.decode("latin-1")) for b in (fields.name, fields.value))
        fields.add(name, value)

    return QuerystringParser(
        {
            "on_field_name": on_field_name,
            "on_field_data": on_field_data,
            "on_field_end": on_field_end,
        }
    )


def _multipart_parser(boundary: bytes | None, fields: _Fields) -> MultipartParser:
    if not boundary:
        raise _malformed("multipart/form-data needs a boundary parameter in its Content-Type")
    if len(boundary) > MAX_BOUNDARY_LENGTH:
        raise _too_large(f"a boundary of {len(boundary)} bytes", MAX_BOUNDARY_LENGTH)
    headers = 0
    disposition = b""

    def check_header_size() -> None:
        if len(fields.name) > MAX_PART_HEADER_BYTES:
            raise _too_large(
                f"a part header over {MAX_PART_HEADER_BYTES} bytes", MAX_PART_HEADER_BYTES
            )

    # A part's headers go through fields.name ("Name\0value"), its text through fields.value.
    def on_header_field(data: bytes, start: int, end: int) -> None:
        fields.name += data[start:end]
        check_header_size()

    def on_header_value(data: bytes, start: int, end: int) -> None:
        if b"\0" not in fields.name:
            fields.name += b"\0"
        fields.name += data[start:end]
        check_header_size()

    def on_header_end() -> None:
        nonlocal headers, disposition
        headers += 1
        if headers > MAX_PART_HEADERS:
            raise _too_large(f"a part with more than {MAX_PART_HEADERS} headers", MAX_PART_HEADERS)
        name, _, value = bytes(fields.name).partition(b"\0")
        if name.strip().lower() == b"content-disposition":
            disposition = value
        fields.name.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        fields.value += data[start:end]

    def on_part_end() -> None:
        nonlocal headers, disposition
        name = parse_options_header(disposition)[1].get(b"name")
        if name is None:
            raise _malformed('a part has no name (Content-Disposition: form-data; name="...")')
        fields.add(name.decode("utf-8", "replace"), fields.value.decode("utf-8", "replace"))
        headers, disposition = 0, b""

    return MultipartParser(
        boundary,
        {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
        # Our limits above answer first, with their reason.
        max_header_count=sys.maxsize,
        max_header_size=sys.maxsize,
    )

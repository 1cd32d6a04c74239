"""uvicorn's HTTP/1.1 protocol (httptools) with the API's 413 for a URL over the parser's limit.

httptools refuses a request target over 64 KiB before the app sees the request, and uvicorn then
answers a plain-text "400 Invalid HTTP request received.". /qas/ takes its texts from the query
string, so that limit is one a client meets: run uvicorn with
`--http qa_api.http_protocol:HttpProtocol` and the answer is the API's JSON error with the reason.
"""

from __future__ import annotations

import json
import uuid

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_URL_BYTES = 65_535  # httptools' parse_url: MAX_URL_LENGTH = (1 << 16) - 1


class HttpProtocol(HttpToolsProtocol):
    def on_url(self, url: bytes) -> None:
        if len(self.url) <= MAX_URL_BYTES:  # past the limit, keep no more of it
            super().on_url(url)

    def send_400_response(self, msg: str) -> None:
        if len(self.url) <= MAX_URL_BYTES:
            super().send_400_response(msg)
            return
        request_id = uuid.uuid4().hex
        body = json.dumps(
            {
                "error": f"The URL is over {MAX_URL_BYTES} bytes, the HTTP server's limit. Send "
                "long texts in the body (form fields or JSON), not in the query string.",
                "code": "payload_too_large",
                "request_id": request_id,
            }
        ).encode()
        self.transport.write(
            b"HTTP/1.1 413 Content Too Large\r\n"
            b"content-type: application/json\r\n"
            b"content-length: %d\r\n"
            b"x-request-id: %s\r\n"
            b"connection: close\r\n\r\n%s" % (len(body), request_id.encode(), body)
        )
        self.transport.close()

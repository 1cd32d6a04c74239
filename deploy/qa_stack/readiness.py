"""A service's readiness as one line `status|reason`, for ./start.sh while it waits.

Run inside the backend container (`docker exec -i CID python - URL < readiness.py`) or on the
host (--local). status: ready, loading, failed (the backend's own words), starting (nothing
answers yet) or unknown.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request

BACKEND_URL = "http://127.0.0.1:8008/health/ready"


def describe(body: bytes, ok: bool) -> tuple[str, str]:
    """(status, reason) from a health endpoint's answer: the backend's JSON or a plain "ok"."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        if ok:
            return "ready", ""
        return "unknown", body[:200].decode(errors="replace")
    models = ", ".join(f"{name}: {state}" for name, state in (data.get("models") or {}).items())
    status = str(data.get("status") or ("ready" if ok else "unknown"))
    return status, str(data.get("reason") or models)


def probe(url: str, timeout: float = 4.0) -> tuple[str, str]:
    """(status, reason) of the service answering at url."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return describe(response.read(), ok=True)
    except urllib.error.HTTPError as exc:
        return describe(exc.read(), ok=False)
    except Exception as exc:  # refused, reset, timed out: all mean "not up yet"
        return "starting", f"the server is not answering yet ({type(exc).__name__})"


def main(argv: list[str]) -> int:
    status, reason = probe(argv[0] if argv else BACKEND_URL)
    print(f"{status}|{' '.join(reason.split())}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Checks of the Python that ./start.sh --local runs the services with.

`python localenv.py version`: exit 1 when this Python is older than 3.11.
`python localenv.py packages`: exit 1 when a runtime package is missing (they are installed then).
"""

from __future__ import annotations

import importlib
import sys

MIN_VERSION = (3, 11)
RUNTIME_PACKAGES = ["torch", "fastapi", "uvicorn", "transformers", "streamlit", "requests_toolbelt"]


def missing_packages() -> list[str]:
    """The runtime packages that do not import (absent, or broken)."""
    missing = []
    for name in RUNTIME_PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def main(argv: list[str]) -> int:
    if argv == ["version"]:
        return int(sys.version_info < MIN_VERSION)
    if argv == ["packages"]:
        missing = missing_packages()
        if missing:
            print("missing: " + " ".join(missing))
        return int(bool(missing))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

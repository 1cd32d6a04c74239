"""The UI's settings checked by the UI's own loader (streamlit/qa_ui/config.py) before a start.

`python uicheck.py`: reads the QA_UI_* variables of its environment; prints the message of each
one the UI would refuse, one a line, and exits 1; exits 0 when the UI can start with them.
./start.sh runs it as a file with the Python the check needs (qa_ui.config: standard library).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "streamlit"))

from qa_ui.config import ENV_PREFIX, SettingsError, UISettings


def problems(environ: Mapping[str, str]) -> list[str]:
    """What the UI says of each QA_UI_ variable it refuses (each read alone, so all are named),
    then of them together."""
    found = []
    for name, value in sorted(environ.items()):
        if name.startswith(ENV_PREFIX):
            try:
                UISettings.from_env({name: value})
            except SettingsError as exc:
                found.append(str(exc))
    if not found:
        try:
            UISettings.from_env(environ)
        except SettingsError as exc:
            found.append(str(exc))
    return found


if __name__ == "__main__":
    messages = problems(os.environ)
    for message in messages:
        print(message)
    sys.exit(int(bool(messages)))

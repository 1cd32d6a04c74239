"""The backend's models, from inside its image: `python - COMMAND < models.py` (start.sh).

check-readable HOST_DIR  exit 1, printing the problem and the one command that fixes it, when a
                         configured local model has a file this container's user cannot read
                         (HOST_DIR: the host directory mounted at /models, MODELS_DIR).
download                 fetch every Hub model of QA_MODELS into the cache (HF_HOME),
                         the files the backend loads.

It runs as the service runs (same image, user, mounts and settings), so it sees what the backend
will see, and it asks the backend's own code (qa_api.config, the registry's readability check).
"""

from __future__ import annotations

import os
import sys

MOUNT = "/models"


def local_sources(models: dict[str, str]) -> dict[str, str]:
    """The models served from a local directory (the rest are Hugging Face Hub ids)."""
    return {name: ref for name, ref in models.items() if ref.startswith(("/", ".", "~"))}


def unreadable(models: dict[str, str]) -> list[str]:
    """One line per local model with a file this process may not read (a missing directory is
    left to the backend, which names it)."""
    from pathlib import Path

    from qa_api.inference.registry import unreadable_files

    problems = []
    for name, ref in local_sources(models).items():
        path = Path(ref).expanduser()
        denied = unreadable_files(path) if path.exists() else []
        if denied:
            more = f" (and {len(denied) - 1} more)" if len(denied) > 1 else ""
            problems.append(f"{name}: permission denied: {denied[0]}{more}")
    return problems


def check_readable_command(host_dir: str) -> int:
    from qa_api.config import get_settings

    problems = unreadable(get_settings().models)
    if not problems:
        return 0
    print(
        f"the backend (uid {os.getuid()}) cannot read the model files in MODELS_DIR={host_dir}, "
        f"mounted at {MOUNT}: " + "; ".join(problems)
    )
    print(f"make them readable: chmod -R a+rX {host_dir}")
    print("(save_pretrained writes model.safetensors with mode 0600, readable by you alone)")
    return 1


def download_command() -> int:
    """Fetch what the backend will load (its own file list), so that it finds it in the cache."""
    from qa_api.config import get_settings
    from qa_api.inference.registry import fetch_model_files

    models = get_settings().models
    local = local_sources(models)
    for name, ref in models.items():
        if name in local:
            print(f"{name}: local directory {ref}, nothing to download")
            continue
        print(f"{name}: downloading {ref} ...", flush=True)
        print(f"{name}: in the cache at {fetch_model_files(ref)[0]}")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "check-readable":
        return check_readable_command(argv[1])
    if argv == ["download"]:
        return download_command()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

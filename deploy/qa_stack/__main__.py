"""`python3 deploy/qa_stack ...` (how start.sh runs the package): see cli.py."""

import sys
from pathlib import Path

if not __package__:  # run as a folder: make the package importable by its name
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa_stack.cli import main

sys.exit(main(sys.argv[1:]))

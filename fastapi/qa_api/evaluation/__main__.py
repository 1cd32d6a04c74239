"""`python -m qa_api.evaluation` = `qa-eval`."""

import sys

from qa_api.evaluation.cli import main

sys.exit(main())

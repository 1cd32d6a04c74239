"""Files the tests read: SQuAD-es excerpts kept in the repository (tests/data/README.md)."""

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
SQUAD_V2_SAMPLE = DATA_DIR / "squad-es-v2.0-dev-sample.json"
SQUAD_V1_SAMPLE = DATA_DIR / "squad-es-v1.1-dev-sample.json"

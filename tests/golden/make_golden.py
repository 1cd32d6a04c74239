"""Write the golden file: transformers 4.57.6's QA pipeline over SQuAD-es samples, tiny model.

Usage (repository root): make golden   (= .venv/bin/python -m tests.golden.make_golden)

Builds the tiny model exactly as the tests' fixture does (deterministic, checked by fingerprint),
makes sure bench/.venv-baseline exists (bench/run.py builds it), runs tests/golden/reference.py
there and writes tests/data/golden/ with, per input, every window's logits and the pipeline's
answers for each option set.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from qa_api.testing.random_model import build_random_qa_model
from tests.golden import golden
from tests.paths import DATA_DIR

logger = logging.getLogger("golden")
REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"


def ensure_baseline_python() -> Path:
    """bench/.venv-baseline's python, built by the benchmark's own helper if missing or stale."""
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
    assert spec is not None
    assert spec.loader is not None
    bench_run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_run)
    bench_run.ensure_baseline_venv()
    return Path(bench_run.servers.BASELINE_VENV) / "bin" / "python"


def pick_inputs(model_dir: Path) -> list[dict[str, Any]]:
    """Every n-th question (of those that fit the smallest window), once per windowing."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    samples = golden.squad_samples()
    fitting = [
        s
        for s in samples
        if len(tokenizer(s.question, add_special_tokens=False)["input_ids"])
        <= golden.MAX_QUESTION_TOKENS
    ]
    chosen = fitting[:: max(1, len(fitting) // golden.QUESTIONS)][: golden.QUESTIONS]
    return [
        {"question": s.question, "context": s.context, "max_seq_len": seq, "doc_stride": stride}
        for s in chosen
        for seq, stride in golden.WINDOWINGS
    ]


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    python = ensure_baseline_python()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_random_qa_model(Path(tmp) / "tiny", size="tiny", data_dir=DATA_DIR)
        again = build_random_qa_model(Path(tmp) / "again", size="tiny", data_dir=DATA_DIR)
        fingerprint = golden.model_fingerprint(model_dir)
        if golden.model_fingerprint(again) != fingerprint:
            raise SystemExit("the tiny model is not deterministic: two builds differ")
        request = {
            "model_dir": str(model_dir),
            "inputs": pick_inputs(model_dir),
            "options": golden.option_grid(),
        }
        request_path, out_path = Path(tmp) / "request.json", Path(tmp) / "out.json"
        request_path.write_text(json.dumps(request, ensure_ascii=False), encoding="utf-8")
        logger.info("running the reference pipeline on %d inputs", len(request["inputs"]))
        reference = Path(__file__).with_name("reference.py")
        subprocess.run([str(python), str(reference), str(request_path), str(out_path)], check=True)
        result = json.loads(out_path.read_text(encoding="utf-8"))
    result["model"] = {
        "build": "qa_api.testing.random_model.build_random_qa_model(size='tiny', "
        "data_dir=tests/data), as tests/conftest.py's tiny_model_dir",
        "fingerprint": fingerprint,
    }
    golden.GOLDEN_FILE.parent.mkdir(parents=True, exist_ok=True)
    golden.GOLDEN_FILE.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    windows = sum(len(item["windows"]) for item in result["inputs"])
    logger.info(
        "wrote %s: %d inputs, %d windows", golden.GOLDEN_FILE, len(result["inputs"]), windows
    )


if __name__ == "__main__":
    main()

"""qa-eval against a real backend process and in-process, with the tiny random-weight model.

Scores are near zero with random weights; these tests check the machinery: every question
answered in both modes, the same answers either way, counts, files and the report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qa_api.config import get_settings
from qa_api.evaluation.cli import main
from qa_api.evaluation.dataset import Dataset, load_squad
from tests.paths import SQUAD_V2_SAMPLE
from tests.processes import BACKEND_DIR, ServiceProcess

pytestmark = pytest.mark.integration

METRIC_KEYS = [
    "exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total", "NoAns_exact",
    "NoAns_f1", "NoAns_total", "best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh",
]  # fmt: skip


@pytest.fixture(scope="module")
def squad_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first article's first three paragraphs: a couple dozen questions, some unanswerable."""
    raw = json.loads(SQUAD_V2_SAMPLE.read_text(encoding="utf-8"))
    article = raw["data"][0]
    raw["data"] = [{**article, "paragraphs": article["paragraphs"][:3]}]
    path = tmp_path_factory.mktemp("squad") / "slice.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    return path


def run_cli(squad_slice: Path, out: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    rc = main(
        [
            str(squad_slice),
            "--output", str(out / "preds.json"),
            "--na-prob-output", str(out / "na.json"),
            "--report", str(out / "report.json"),
            "--no-progress",
            *extra,
        ]
    )  # fmt: skip
    return rc, json.loads((out / "report.json").read_text(encoding="utf-8"))


def read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def check_run(ds: Dataset, out: Path, report: dict[str, Any]) -> None:
    """Everything answered and accounted for; answers are spans of their context or ""."""
    preds, na = read(out / "preds.json"), read(out / "na.json")
    assert list(preds) == [q.qid for q in ds.questions]
    assert list(na) == list(preds)
    for q in ds.questions:
        assert preds[q.qid] in q.context
        assert 0.0 <= na[q.qid] <= 1.0
    metrics = report["metrics"]
    assert list(metrics) == METRIC_KEYS
    n, no_ans = len(ds.questions), ds.num_unanswerable
    assert (metrics["total"], metrics["HasAns_total"], metrics["NoAns_total"]) == (
        n,
        n - no_ans,
        no_ans,
    )
    for key in ("exact", "f1", "best_exact", "best_f1", "NoAns_exact", "HasAns_f1"):
        assert 0.0 <= metrics[key] <= 100.0
    assert metrics["best_exact"] >= metrics["exact"]
    assert metrics["best_f1"] >= metrics["f1"]
    empties = sum(1 for q in ds.questions if not q.answers and preds[q.qid] == "")
    assert metrics["NoAns_exact"] == pytest.approx(100.0 * empties / no_ans)
    assert report["dataset"] == {
        "path": str(report["dataset"]["path"]),
        "version": "2.0",
        "questions": n,
        "unanswerable": no_ans,
        "limit": None,
    }
    assert report["failed"] == 0
    assert report["failures"] == {}
    latency = report["latency_ms"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert report["throughput_qps"] > 0
    assert report["wall_s"] > 0
    assert report["model"] == "tiny"
    assert report["backend"] == "torch-fp32 (cpu, float32)"


def test_api_mode_answers_every_question(
    backend_server: ServiceProcess,
    squad_slice: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ds = load_squad(squad_slice)
    assert len(ds.questions) >= 15
    assert ds.num_unanswerable > 0

    rc, report = run_cli(
        squad_slice, tmp_path, "--api-url", backend_server.url, "--model", "tiny",
        "--concurrency", "4",
    )  # fmt: skip

    assert rc == 0
    assert (report["mode"], report["api_url"], report["concurrency"]) == (
        "api",
        backend_server.url,
        4,
    )
    check_run(ds, tmp_path, report)
    table = capsys.readouterr().out
    assert "HasAns_exact" in table
    assert "latency p99 (ms)" in table

    # The predictions file scores the same through the official-rules path.
    rc = main(
        [
            str(squad_slice),
            "--predictions", str(tmp_path / "preds.json"),
            "--na-prob-file", str(tmp_path / "na.json"),
            "--report", str(tmp_path / "rescored.json"),
        ]
    )  # fmt: skip
    assert rc == 0
    assert read(tmp_path / "rescored.json")["metrics"] == report["metrics"]


def test_in_process_mode_gives_the_api_answers(
    backend_server: ServiceProcess,
    squad_slice: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in backend_server.env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    ds = load_squad(squad_slice)
    local, api = tmp_path / "local", tmp_path / "api"
    local.mkdir()
    api.mkdir()

    try:
        rc, report = run_cli(squad_slice, local, "--concurrency", "1")
    finally:
        get_settings.cache_clear()
    rc_api, _ = run_cli(squad_slice, api, "--api-url", backend_server.url, "--concurrency", "1")

    assert (rc, rc_api) == (0, 0)
    assert (report["mode"], report["api_url"], report["concurrency"]) == ("in-process", None, 1)
    check_run(ds, local, report)
    assert read(local / "preds.json") == read(api / "preds.json")
    local_na, api_na = read(local / "na.json"), read(api / "na.json")
    assert local_na == pytest.approx(api_na, abs=1e-6)


def test_module_entry_point_with_limit(backend_server: ServiceProcess, tmp_path: Path) -> None:
    """`python -m qa_api.evaluation` as a user runs it: exit status, table on stdout, --limit."""
    env = {**os.environ, "PYTHONPATH": str(BACKEND_DIR)}
    proc = subprocess.run(
        [
            sys.executable, "-m", "qa_api.evaluation", str(SQUAD_V2_SAMPLE),
            "--api-url", backend_server.url, "--limit", "5", "--report", str(tmp_path / "r.json"),
        ],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = read(tmp_path / "r.json")
    assert report["metrics"]["total"] == 5
    assert report["dataset"]["limit"] == 5
    assert "throughput (q/s)" in proc.stdout
    assert "5/5" in proc.stderr  # the progress bar reached the end


def test_unknown_model_stops_before_answering(
    backend_server: ServiceProcess, squad_slice: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rc = main([str(squad_slice), "--api-url", backend_server.url, "--model", "nope"])
    assert rc == 2
    assert "HTTP 404" in caplog.text
    assert "nope" in caplog.text

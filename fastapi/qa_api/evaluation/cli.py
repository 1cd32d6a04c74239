"""`qa-eval`: EM / F1 (official SQuAD v2.0 rules), latency and throughput of the served model.

qa-eval data.json                                # in-process, the backend's own runtime
qa-eval data.json --api-url http://localhost:8008 --concurrency 8
qa-eval data.json --predictions preds.json --na-prob-file na_prob.json   # score a file only
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qa_api.evaluation.dataset import Dataset, DatasetError, load_squad
from qa_api.evaluation.report import format_table, latency_stats
from qa_api.evaluation.runner import ModelClient, PredictionError, RunResult, run_predictions
from qa_api.evaluation.squad_metrics import evaluate

logger = logging.getLogger("qa_api.evaluation")

EXIT_OK, EXIT_FAILED_QUESTIONS, EXIT_ERROR = 0, 1, 2
_MAX_FAILURES_IN_REPORT = 20


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qa-eval",
        description="Evaluate the QA model on a SQuAD v1.1/v2.0 JSON file: EM and F1 with the "
        "official SQuAD v2.0 rules, HasAns/NoAns breakdown, best no-answer threshold, latency.",
    )
    parser.add_argument("data_file", type=Path, help="SQuAD v1.1 or v2.0 JSON file")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--api-url", help="answer through a running backend (e.g. http://localhost:8008)"
    )
    source.add_argument(
        "--predictions",
        type=Path,
        metavar="FILE",
        help="score an existing predictions file ({qid: text}) instead of answering",
    )
    parser.add_argument("--model", help="model name (default: the server's default model)")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N questions")
    parser.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        default=8,
        help="questions in flight (default 8); 1 gives unqueued per-question latency",
    )
    parser.add_argument("--output", type=Path, metavar="FILE", help="write predictions {qid: text}")
    parser.add_argument(
        "--na-prob-output", type=Path, metavar="FILE", help="write no-answer probabilities"
    )
    parser.add_argument("--report", type=Path, metavar="FILE", help="write the JSON report")
    parser.add_argument(
        "--na-prob-file",
        type=Path,
        metavar="FILE",
        help="no-answer probabilities for --predictions (enables best_* thresholds)",
    )
    parser.add_argument(
        "--na-prob-thresh",
        type=float,
        default=1.0,
        help="score as no-answer when the no-answer probability exceeds this (default 1.0)",
    )
    parser.add_argument(
        "--handle-impossible-answer",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="allow/forbid 'no answer' (default: the model's configured default)",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("QA_API_KEY"),
        help="X-API-Key for --api-url (default: $QA_API_KEY)",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds per request (default 120)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _read_json_object(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"cannot read {what} {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise DatasetError(f"{what} {path} must be a JSON object {{qid: value}}")
    return data


def _model_client(args: argparse.Namespace) -> ModelClient:
    if args.api_url:
        from qa_api.evaluation.api_client import ApiPredictor

        return ApiPredictor(
            args.api_url,
            model=args.model,
            api_key=args.api_key,
            timeout_s=args.timeout,
            handle_impossible_answer=args.handle_impossible_answer,
        )
    # Imported only here: the in-process runtime pulls in transformers and torch / onnxruntime.
    from qa_api.evaluation.local import LocalPredictor

    return LocalPredictor(
        model=args.model,
        handle_impossible_answer=args.handle_impossible_answer,
        timeout_s=args.timeout,
    )


def build_report(
    args: argparse.Namespace,
    dataset: Dataset,
    metrics: dict[str, float | int],
    result: RunResult | None,
    model_info: dict[str, Any],
    concurrency: int | None,
) -> dict[str, Any]:
    mode = "predictions-file" if args.predictions else "api" if args.api_url else "in-process"
    backend = model_info.get("backend")
    if backend and model_info.get("device"):
        backend = f"{backend} ({model_info['device']}, {model_info.get('dtype')})"
    return {
        "dataset": {
            "path": str(args.data_file),
            "version": dataset.version,
            "questions": len(dataset.questions),
            "unanswerable": dataset.num_unanswerable,
            "limit": args.limit,
        },
        "mode": mode,
        "api_url": args.api_url,
        "model": model_info.get("name") or args.model,
        "model_id": model_info.get("model_id"),
        "revision": model_info.get("revision"),
        "backend": backend,
        "concurrency": concurrency,
        "metrics": metrics,
        "latency_ms": latency_stats(result.latencies_ms.values() if result else []),
        "throughput_qps": len(result.answers) / result.wall_s
        if result and result.wall_s > 0
        else None,
        "wall_s": result.wall_s if result else None,
        "failed": len(result.failures) if result else 0,
        "failures": dict(list(result.failures.items())[:_MAX_FAILURES_IN_REPORT]) if result else {},
    }


def run(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise DatasetError("--limit must be >= 1")
    dataset = load_squad(args.data_file, args.limit)
    logger.info(
        "%d questions (%d unanswerable) from %s, SQuAD v%s",
        len(dataset.questions),
        dataset.num_unanswerable,
        args.data_file,
        dataset.version,
    )
    gold = dataset.gold
    result: RunResult | None = None
    model_info: dict[str, Any] = {}
    concurrency: int | None = None
    if args.predictions:
        raw_preds = _read_json_object(args.predictions, "predictions")
        preds = {str(k): str(v) for k, v in raw_preds.items()}
        na_probs = (
            {str(k): float(v) for k, v in _read_json_object(args.na_prob_file, "na-prob").items()}
            if args.na_prob_file
            else None
        )
    else:
        concurrency = args.concurrency
        if concurrency < 1:
            raise DatasetError("--concurrency must be >= 1")
        client = _model_client(args)
        try:
            model_info = client.describe()
            result = run_predictions(
                client, dataset.questions, concurrency=concurrency, progress=not args.no_progress
            )
        finally:
            client.close()
        preds, na_probs = result.predictions, result.na_probs
        if result.failures:
            logger.error(
                "%d of %d questions failed and are left out of the scores",
                len(result.failures),
                len(dataset.questions),
            )
            gold = {qid: answers for qid, answers in gold.items() if qid in preds}
        if args.output:
            _write_json(args.output, preds)
        if args.na_prob_output:
            _write_json(args.na_prob_output, na_probs)

    if not gold:
        raise PredictionError("no question was answered")
    metrics = evaluate(gold, preds, na_probs, args.na_prob_thresh)
    report = build_report(args, dataset, metrics, result, model_info, concurrency)
    if args.report:
        _write_json(args.report, report)
    sys.stdout.write(format_table(report))
    return EXIT_FAILED_QUESTIONS if report["failed"] else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.na_prob_file and not args.predictions:
        parser.error("--na-prob-file goes with --predictions")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return run(args)
    except (DatasetError, PredictionError, ValueError) as exc:
        logger.error("%s", exc)
        return EXIT_ERROR

"""Exact Match and F1 with the rules of the official SQuAD v2.0 evaluation script.

Same normalisation (lower case, strip `string.punctuation`, drop the English articles a/an/the,
collapse whitespace), same handling of unanswerable questions and the same best no-answer
threshold search, so the numbers agree with `evaluate-v2.0.py` on any predictions file. The
script's rules are kept even where they are odd for Spanish (English articles only) because
agreeing with it is what makes the figures comparable with published ones.
"""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Mapping, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)

Metrics = dict[str, float | int]


def normalize_answer(text: str) -> str:
    """Lower text and remove punctuation, English articles and extra whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _tokens(text: str) -> list[str]:
    return normalize_answer(text).split() if text else []


def compute_exact(gold: str, pred: str) -> int:
    return int(normalize_answer(gold) == normalize_answer(pred))


def compute_f1(gold: str, pred: str) -> float:
    gold_toks = _tokens(gold)
    pred_toks = _tokens(pred)
    if not gold_toks or not pred_toks:
        # No-answer on either side: 1 when both are empty, else 0.
        return float(gold_toks == pred_toks)
    num_same = sum((collections.Counter(gold_toks) & collections.Counter(pred_toks)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_toks)
    recall = num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def raw_scores(
    gold: Mapping[str, Sequence[str]], preds: Mapping[str, str]
) -> tuple[dict[str, float], dict[str, float]]:
    """Per-question EM and F1, the max over gold answers ('' is the only gold when none is left)."""
    exact: dict[str, float] = {}
    f1: dict[str, float] = {}
    for qid, answers in gold.items():
        golds = [a for a in answers if normalize_answer(a)] or [""]
        pred = preds[qid]
        exact[qid] = max(compute_exact(a, pred) for a in golds)
        f1[qid] = max(compute_f1(a, pred) for a in golds)
    return exact, f1


def apply_no_answer_threshold(
    scores: Mapping[str, float],
    na_probs: Mapping[str, float],
    has_ans: Mapping[str, bool],
    threshold: float,
) -> dict[str, float]:
    """Score a question as no-answer when its no-answer probability exceeds `threshold`."""
    return {
        qid: float(not has_ans[qid]) if na_probs[qid] > threshold else s
        for qid, s in scores.items()
    }


def _summary(exact: Mapping[str, float], f1: Mapping[str, float], qids: Sequence[str]) -> Metrics:
    total = len(qids)
    return {
        "exact": 100.0 * sum(exact[q] for q in qids) / total,
        "f1": 100.0 * sum(f1[q] for q in qids) / total,
        "total": total,
    }


def find_best_threshold(
    preds: Mapping[str, str],
    scores: Mapping[str, float],
    na_probs: Mapping[str, float],
    has_ans: Mapping[str, bool],
) -> tuple[float, float]:
    """Best score over no-answer thresholds, and that threshold (official sweep, ties included)."""
    cur_score = float(sum(1 for v in has_ans.values() if not v))
    best_score = cur_score
    best_thresh = 0.0
    # Stable sort over the na_probs order, as the official script does: ties resolve the same way.
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
        if qid not in scores:
            continue
        if has_ans[qid]:
            cur_score += scores[qid]
        elif preds[qid]:
            cur_score -= 1
        if cur_score > best_score:
            best_score = cur_score
            best_thresh = na_probs[qid]
    return 100.0 * best_score / len(scores), best_thresh


def evaluate(
    gold: Mapping[str, Sequence[str]],
    preds: Mapping[str, str],
    na_probs: Mapping[str, float] | None = None,
    na_prob_thresh: float = 1.0,
) -> Metrics:
    """The official script's output dict for `gold` (qid -> answer texts, [] = unanswerable).

    Every gold question needs a prediction (raises ValueError otherwise). The best_* entries
    appear only when `na_probs` is given, as with the script's --na-prob-file.
    """
    if not gold:
        raise ValueError("no questions to evaluate")
    missing = [qid for qid in gold if qid not in preds]
    if missing:
        raise ValueError(f"{len(missing)} questions have no prediction (first: {missing[0]})")
    probs = na_probs if na_probs is not None else {qid: 0.0 for qid in preds}
    missing = [qid for qid in gold if qid not in probs]
    if missing:
        raise ValueError(
            f"{len(missing)} questions have no no-answer probability (first: {missing[0]})"
        )
    has_ans = {qid: bool(answers) for qid, answers in gold.items()}
    exact_raw, f1_raw = raw_scores(gold, preds)
    exact = apply_no_answer_threshold(exact_raw, probs, has_ans, na_prob_thresh)
    f1 = apply_no_answer_threshold(f1_raw, probs, has_ans, na_prob_thresh)

    result = _summary(exact, f1, list(gold))
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [qid for qid, v in has_ans.items() if v is wanted]
        if qids:
            result.update({f"{prefix}_{k}": v for k, v in _summary(exact, f1, qids).items()})
    if na_probs is not None:
        result["best_exact"], result["best_exact_thresh"] = find_best_threshold(
            preds, exact_raw, na_probs, has_ans
        )
        result["best_f1"], result["best_f1_thresh"] = find_best_threshold(
            preds, f1_raw, na_probs, has_ans
        )
    return result

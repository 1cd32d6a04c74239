"""EM/F1 of qa_api.evaluation against hand-computed numbers and the official SQuAD v2.0 script.

`official_*` below is an independent, faithful transcription of `evaluate-v2.0.py`
(Rajpurkar & Jia et al., CC BY-SA 4.0) minus its CLI and plots; the product code must agree with
it to 1e-6 on any predictions file.
"""

from __future__ import annotations

import collections
import json
import random
import re
import string
from pathlib import Path
from typing import Any

import pytest

from qa_api.evaluation.cli import main
from qa_api.evaluation.dataset import parse_squad
from qa_api.evaluation.squad_metrics import (
    compute_exact,
    compute_f1,
    evaluate,
    normalize_answer,
)
from tests.paths import SQUAD_V1_SAMPLE, SQUAD_V2_SAMPLE

pytestmark = pytest.mark.unit


# --- the official script (reference) ------------------------------------------------------------


def official_normalize(s: str) -> str:
    def remove_articles(text: str) -> str:
        return re.sub(re.compile(r"\b(a|an|the)\b", re.UNICODE), " ", text)

    def white_space_fix(text: str) -> str:
        return " ".join(text.split())

    def remove_punc(text: str) -> str:
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def official_tokens(s: str) -> list[str]:
    if not s:
        return []
    return official_normalize(s).split()


def official_exact(a_gold: str, a_pred: str) -> int:
    return int(official_normalize(a_gold) == official_normalize(a_pred))


def official_f1(a_gold: str, a_pred: str) -> float:
    gold_toks = official_tokens(a_gold)
    pred_toks = official_tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def official_find_best_thresh(
    preds: dict[str, str],
    scores: dict[str, Any],
    na_probs: dict[str, float],
    qid_to_has_ans: dict[str, bool],
) -> tuple[float, float]:
    num_no_ans = sum(1 for k in qid_to_has_ans if not qid_to_has_ans[k])
    cur_score: float = num_no_ans
    best_score = cur_score
    best_thresh = 0.0
    qid_list = sorted(na_probs, key=lambda k: na_probs[k])
    for qid in qid_list:
        if qid not in scores:
            continue
        if qid_to_has_ans[qid]:
            diff = scores[qid]
        elif preds[qid]:
            diff = -1
        else:
            diff = 0
        cur_score += diff
        if cur_score > best_score:
            best_score = cur_score
            best_thresh = na_probs[qid]
    return 100.0 * best_score / len(scores), best_thresh


def official_eval(
    dataset_json: dict[str, Any],
    preds: dict[str, str],
    na_probs: dict[str, float] | None = None,
    na_prob_thresh: float = 1.0,
) -> dict[str, Any]:
    """What `evaluate-v2.0.py data.json preds.json [--na-prob-file ...]` prints."""
    dataset = dataset_json["data"]
    has_na_prob_file = na_probs is not None
    probs = na_probs if na_probs is not None else {k: 0.0 for k in preds}
    qid_to_has_ans = {
        qa["id"]: bool(qa["answers"]) for a in dataset for p in a["paragraphs"] for qa in p["qas"]
    }
    has_ans_qids = [k for k, v in qid_to_has_ans.items() if v]
    no_ans_qids = [k for k, v in qid_to_has_ans.items() if not v]
    exact_raw: dict[str, Any] = {}
    f1_raw: dict[str, Any] = {}
    for article in dataset:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                qid = qa["id"]
                gold_answers = [a["text"] for a in qa["answers"] if official_normalize(a["text"])]
                if not gold_answers:
                    gold_answers = [""]
                if qid not in preds:
                    continue
                exact_raw[qid] = max(official_exact(a, preds[qid]) for a in gold_answers)
                f1_raw[qid] = max(official_f1(a, preds[qid]) for a in gold_answers)

    def apply_thresh(scores: dict[str, Any]) -> dict[str, Any]:
        return {
            qid: float(not qid_to_has_ans[qid]) if probs[qid] > na_prob_thresh else s
            for qid, s in scores.items()
        }

    exact_t, f1_t = apply_thresh(exact_raw), apply_thresh(f1_raw)

    def eval_dict(qid_list: list[str]) -> dict[str, Any]:
        total = len(qid_list)
        return {
            "exact": 100.0 * sum(exact_t[k] for k in qid_list) / total,
            "f1": 100.0 * sum(f1_t[k] for k in qid_list) / total,
            "total": total,
        }

    out = eval_dict(list(exact_t))
    if has_ans_qids:
        out.update({f"HasAns_{k}": v for k, v in eval_dict(has_ans_qids).items()})
    if no_ans_qids:
        out.update({f"NoAns_{k}": v for k, v in eval_dict(no_ans_qids).items()})
    if has_na_prob_file:
        out["best_exact"], out["best_exact_thresh"] = official_find_best_thresh(
            preds, exact_raw, probs, qid_to_has_ans
        )
        out["best_f1"], out["best_f1_thresh"] = official_find_best_thresh(
            preds, f1_raw, probs, qid_to_has_ans
        )
    return out


# --- helpers ------------------------------------------------------------------------------------


def squad_json(questions: list[tuple[str, list[str]]], version: str = "v2.0") -> dict[str, Any]:
    """A SQuAD file with one paragraph per question: (qid, gold texts); [] = unanswerable."""
    paragraphs = [
        {
            "context": "contexto",
            "qas": [
                {
                    "id": qid,
                    "question": "¿pregunta?",
                    "answers": [{"text": t, "answer_start": 0} for t in golds],
                    "is_impossible": not golds,
                }
            ],
        }
        for qid, golds in questions
    ]
    return {"version": version, "data": [{"title": "t", "paragraphs": paragraphs}]}


def ours(
    dataset_json: dict[str, Any],
    preds: dict[str, str],
    na_probs: dict[str, float] | None = None,
    na_prob_thresh: float = 1.0,
) -> dict[str, Any]:
    return evaluate(parse_squad(dataset_json).gold, preds, na_probs, na_prob_thresh)


def assert_agree(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert list(got) == list(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key


# --- hand-computed cases ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gold", "pred", "exact", "f1"),
    [
        # English articles go, as in the official script; Spanish ones stay.
        ("The Denver Broncos", "denver broncos", 1, 1.0),
        ("an apple a day", "apple day", 1, 1.0),
        ("el Denver", "Denver", 0, 2 / 3),
        # string.punctuation only: ASCII marks go, Spanish ¿ ¡ « » stay.
        ("Santa Clara, California.", "santa clara california", 1, 1.0),
        ("¿Quién?", "quién", 0, 0.0),
        ("«Don Quijote»", "Don Quijote", 0, 0.0),
        # Case folds, accents do not.
        ("ÁNGEL Fernández", "ángel fernández", 1, 1.0),
        ("Fernández", "Fernandez", 0, 0.0),
        # Token overlap: precision 2/3, recall 2/4.
        ("siglos X y XI", "los siglos X", 0, 4 / 7),
        # Repeated tokens count once per occurrence.
        ("muy muy bien", "muy bien bien", 0, 2 / 3),
        # Empty on either side: 1 only when both are empty.
        ("", "", 1, 1.0),
        ("", "algo", 0, 0.0),
        ("Francia", "", 0, 0.0),
        ("the", "", 1, 1.0),
    ],
)
def test_exact_and_f1_on_single_pairs(gold: str, pred: str, exact: int, f1: float) -> None:
    assert compute_exact(gold, pred) == exact
    assert compute_f1(gold, pred) == pytest.approx(f1, abs=1e-12)
    assert (official_exact(gold, pred), official_f1(gold, pred)) == pytest.approx((exact, f1))


def test_normalize_answer() -> None:
    assert normalize_answer("  The  Año, (1605)!  ") == "año 1605"
    assert normalize_answer("¡Hola!") == "¡hola"


def test_evaluate_hand_computed_v2() -> None:
    data = squad_json(
        [
            ("q1", ["Denver Broncos", "the Broncos"]),
            ("q2", ["siglos X y XI", "en los siglos X y XI", ""]),
            ("q3", []),
            ("q4", []),
        ]
    )
    preds = {"q1": "Broncos", "q2": "los siglos X", "q3": "", "q4": "Francia"}
    na_probs = {"q1": 0.1, "q2": 0.2, "q3": 0.9, "q4": 0.3}
    # q1: EM 1 via the second gold; q2: best F1 against the second gold is p=1, r=1/2 -> 2/3;
    # q3: empty prediction on an unanswerable question is right; q4: any text there is wrong.
    want = {
        "exact": 50.0,
        "f1": 100 * (1 + 2 / 3 + 1 + 0) / 4,
        "total": 4,
        "HasAns_exact": 50.0,
        "HasAns_f1": 100 * (1 + 2 / 3) / 2,
        "HasAns_total": 2,
        "NoAns_exact": 50.0,
        "NoAns_f1": 50.0,
        "NoAns_total": 2,
        # Sweep by na_prob: start at 2 (NoAns count); q1 +1 -> 3 (best, thresh 0.1 for EM);
        # q2 +0 EM / +2/3 F1 -> 3 / 3.67 (best F1, thresh 0.2); q4 -1; q3 0.
        "best_exact": 75.0,
        "best_exact_thresh": 0.1,
        "best_f1": 100 * (3 + 2 / 3) / 4,
        "best_f1_thresh": 0.2,
    }
    assert_agree(ours(data, preds, na_probs), want)
    assert_agree(official_eval(data, preds, na_probs), want)
    # Above a threshold of 0.15 q2, q3 and q4 count as "no answer": q2 -> 0, q3 and q4 -> 1.
    thresholded = ours(data, preds, na_probs, na_prob_thresh=0.15)
    assert (thresholded["exact"], thresholded["f1"]) == (75.0, 75.0)
    assert_agree(thresholded, official_eval(data, preds, na_probs, na_prob_thresh=0.15))


def test_evaluate_v1_has_no_noans_breakdown_and_best_only_with_na_probs() -> None:
    data = squad_json([("a", ["Cervantes"]), ("b", ["1605", "en 1605"])], version="1.1")
    preds = {"a": "Miguel de Cervantes", "b": "1605"}
    got = ours(data, preds)
    assert got == {
        "exact": 50.0,
        "f1": pytest.approx(100 * (0.5 + 1) / 2),
        "total": 2,
        "HasAns_exact": 50.0,
        "HasAns_f1": pytest.approx(75.0),
        "HasAns_total": 2,
    }
    assert_agree(got, official_eval(data, preds))


def test_gold_answers_that_normalise_to_nothing_leave_empty_as_the_only_gold() -> None:
    # Answerable by the file (answers present) but every text normalises to "": HasAns, gold "".
    data = squad_json([("x", ["", "!", "the"]), ("y", [])])
    got = ours(data, {"x": "", "y": "nada"})
    assert (got["HasAns_exact"], got["HasAns_total"], got["NoAns_exact"]) == (100.0, 1, 0.0)


def test_missing_predictions_are_an_error() -> None:
    data = squad_json([("a", ["uno"]), ("b", [])])
    with pytest.raises(ValueError, match="1 questions have no prediction"):
        ours(data, {"a": "uno"})
    with pytest.raises(ValueError, match="no no-answer probability"):
        ours(data, {"a": "uno", "b": ""}, {"a": 0.5})


# --- agreement with the official script ---------------------------------------------------------

WORDS = ["the", "a", "an", "el", "la", "Año", "año", "niño", "Niño", "Francia", "1605", "X", "xi"]
MARKS = ["", ",", ".", "!", "¿", "?", "¡", "'", '"', "-", "(", ")", " ", "  "]


def random_text(rng: random.Random, max_words: int = 5) -> str:
    words = rng.choices(WORDS, k=rng.randint(0, max_words))
    return "".join(rng.choice(MARKS) + w + rng.choice(MARKS) for w in words)


def random_case(rng: random.Random, n: int) -> tuple[dict[str, Any], dict[str, str], dict]:
    questions = []
    for i in range(n):
        golds = [random_text(rng) for _ in range(rng.choice([0, 0, 1, 2, 3]))]
        questions.append((f"q{i}", golds))
    preds = {}
    for qid, golds in questions:
        choice = rng.random()
        if golds and choice < 0.3:
            preds[qid] = rng.choice(golds)
        elif choice < 0.5:
            preds[qid] = ""
        else:
            preds[qid] = random_text(rng)
    # One decimal: many ties, whose order the official sweep depends on.
    na_probs = {qid: round(rng.random(), 1) for qid, _ in rng.sample(questions, len(questions))}
    return squad_json(questions), preds, na_probs


@pytest.mark.parametrize("seed", range(40))
def test_agrees_with_official_script_on_random_files(seed: int) -> None:
    rng = random.Random(seed)
    data, preds, na_probs = random_case(rng, rng.randint(1, 60))
    assert_agree(ours(data, preds, na_probs), official_eval(data, preds, na_probs))
    assert_agree(ours(data, preds), official_eval(data, preds))
    thresh = rng.choice([0.0, 0.35, 0.5, 1.0])
    assert_agree(ours(data, preds, na_probs, thresh), official_eval(data, preds, na_probs, thresh))


def noisy_predictions(
    data: dict[str, Any], rng: random.Random
) -> tuple[dict[str, str], dict[str, float]]:
    """Gold answers, truncated, padded, emptied or replaced at random."""
    preds: dict[str, str] = {}
    na_probs: dict[str, float] = {}
    for article in data["data"]:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                texts = [a["text"] for a in qa["answers"]] or [p["context"][:40]]
                words = rng.choice(texts).split()
                cut = rng.randint(0, len(words))
                preds[qa["id"]] = rng.choice(
                    [" ".join(words), " ".join(words[cut:]), " ".join(["el", *words]), ""]
                )
                na_probs[qa["id"]] = rng.random()
    return preds, na_probs


@pytest.mark.parametrize("path", [SQUAD_V2_SAMPLE, SQUAD_V1_SAMPLE], ids=["v2.0", "v1.1"])
def test_agrees_with_official_script_on_squad_es(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    data["data"] = data["data"][:3]
    preds, na_probs = noisy_predictions(data, random.Random(7))
    want = official_eval(data, preds, na_probs)
    assert want["total"] > 300
    assert_agree(ours(data, preds, na_probs), want)


def test_cli_scores_a_predictions_file_like_the_official_script(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(SQUAD_V2_SAMPLE.read_text(encoding="utf-8"))
    data["data"] = data["data"][:2]
    preds, na_probs = noisy_predictions(data, random.Random(3))
    files = {"data": data, "preds": preds, "na": na_probs}
    for name, content in files.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(content), encoding="utf-8")

    rc = main(
        [
            str(tmp_path / "data.json"),
            "--predictions",
            str(tmp_path / "preds.json"),
            "--na-prob-file",
            str(tmp_path / "na.json"),
            "--report",
            str(tmp_path / "report.json"),
        ]
    )

    assert rc == 0
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["mode"] == "predictions-file"
    assert report["dataset"]["version"] == "2.0"
    assert_agree(report["metrics"], official_eval(data, preds, na_probs))
    table = capsys.readouterr().out
    assert f"{report['metrics']['best_f1']:.2f}" in table
    assert "HasAns_total" in table

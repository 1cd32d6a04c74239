"""The UI's actions without Streamlit: typed outcomes from plain functions over a scripted client."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest

from qa_ui import actions
from qa_ui.actions import Answered, Compared, Failed, Form, Invalid, Loaded, ModelAnswer, Refused
from qa_ui.client import BackendError, BackendUnreachable, Progress, QARequest, QAResult
from qa_ui.testing import SERVED_LIMITS, FakeQAClient, make_models, make_result, minimal_pdf

pytestmark = pytest.mark.unit

CONTEXT = "Miguel de Cervantes escribió el Quijote."
FORM = Form(
    context=CONTEXT,
    question="  ¿Quién escribió el Quijote?  ",
    model="beto",
    top_k=3,
    max_answer_len=30,
    allow_no_answer=True,
    read_all=False,
)
REQUEST = QARequest(
    CONTEXT, "¿Quién escribió el Quijote?", model="beto", top_k=3, max_answer_len=30
)
WHEN = datetime(2026, 1, 2, 3, 4, 5)


def by_model(request: QARequest) -> QAResult:
    if request.model == "broken":
        raise BackendError("boom", code="internal_error", status=500)
    return make_result(request.context, [("Miguel de Cervantes", 0.9)], model=request.model or "")


def test_the_form_becomes_the_request() -> None:
    assert actions.build_request(FORM, SERVED_LIMITS) == dataclasses.replace(
        REQUEST, handle_impossible_answer=True
    )


@pytest.mark.parametrize(
    ("chars", "read_all", "limits", "passages"),
    [
        (40_000, False, SERVED_LIMITS, "bm25"),  # many windows: the passages BM25 ranks first
        (40_000, True, SERVED_LIMITS, None),  # the user asked for a full read
        (400_000, True, SERVED_LIMITS, "bm25"),  # too long to read whole, whatever is asked
        (40_000, False, None, None),  # limits not known (backend down): the backend decides
    ],
)
def test_long_texts_are_read_by_passages(
    chars: int, read_all: bool, limits: object, passages: str | None
) -> None:
    form = dataclasses.replace(FORM, context="x" * chars, read_all=read_all)
    assert actions.build_request(form, limits).passages == passages  # type: ignore[arg-type]


def test_empty_fields_are_refused_before_any_call() -> None:
    assert actions.check(dataclasses.replace(REQUEST, context=" \n")) == Invalid("empty_context")
    assert actions.check(dataclasses.replace(REQUEST, question="")) == Invalid("empty_question")
    assert actions.check(REQUEST) is None


def test_a_question_over_the_served_limit_is_refused_with_the_limit() -> None:
    limit = SERVED_LIMITS.max_question_chars
    long = dataclasses.replace(REQUEST, question="¿" + "a" * limit + "?")
    assert actions.check(long, SERVED_LIMITS) == Invalid("long_question", limit)
    assert actions.check(long) is None  # limits not known: the backend decides
    fits = dataclasses.replace(REQUEST, question="a" * limit)
    assert actions.check(fits, SERVED_LIMITS) is None


def test_ask_reports_progress_and_closes_the_stream() -> None:
    progress = [Progress(0, 3, 0.1, 0.6), Progress(2, 3, 0.5, 0.2)]
    fake = FakeQAClient(responder=by_model, progress=progress)
    seen: list[Progress] = []

    outcome = actions.ask(fake, REQUEST, seen.append)

    assert outcome == Answered(REQUEST, by_model(REQUEST))
    assert seen == progress
    assert fake.streams_closed == 1


def test_ask_turns_a_backend_error_into_failed() -> None:
    fake = FakeQAClient(down=True)
    outcome = actions.ask(fake, REQUEST)
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, BackendUnreachable)
    assert fake.streams_closed == 1


def test_compare_asks_each_model_in_turn_and_keeps_each_outcome() -> None:
    fake = FakeQAClient(responder=by_model)

    outcome = actions.compare(fake, REQUEST, ["beto", "broken", "distil"])

    assert [c.model for c in fake.calls] == ["beto", "broken", "distil"]
    assert [dataclasses.replace(c, model=None) for c in fake.calls] == [
        dataclasses.replace(REQUEST, model=None)
    ] * 3
    assert [a.model for a in outcome.answers] == ["beto", "broken", "distil"]
    beto, broken, distil = (a.outcome for a in outcome.answers)
    assert isinstance(broken, BackendError)
    assert broken.message == "boom"
    assert (beto, distil) == (
        by_model(dataclasses.replace(REQUEST, model="beto")),
        by_model(dataclasses.replace(REQUEST, model="distil")),
    )
    assert fake.streams_closed == 3


def test_compare_ready_skips_models_that_are_not_ready() -> None:
    models = make_models("beto", "distil")
    loading = make_models("loading", ready=False).models[0]
    fake = FakeQAClient(
        responder=by_model,
        models_info=dataclasses.replace(models, models=(*models.models, loading)),
    )
    outcome = actions.compare_ready(fake, REQUEST, None)
    assert isinstance(outcome, Compared)
    assert [a.model for a in outcome.answers] == ["beto", "distil"]


def test_compare_ready_fails_when_the_models_cannot_be_listed() -> None:
    outcome = actions.compare_ready(FakeQAClient(down=True), REQUEST, None)
    assert isinstance(outcome, Failed)
    assert outcome.error.code == "unreachable"


def test_history_gets_one_entry_per_answer_received() -> None:
    result = by_model(REQUEST)
    error = BackendError("boom")
    compared = Compared(REQUEST, (ModelAnswer("beto", result), ModelAnswer("broken", error)))

    assert [e.model for e in actions.answered(Answered(REQUEST, result), WHEN)] == ["beto"]
    (entry,) = actions.answered(compared, WHEN)
    assert (entry.time, entry.answer, entry.top_k) == (
        "2026-01-02T03:04:05",
        "Miguel de Cervantes",
        3,
    )
    assert actions.answered(Failed(error)) == []
    assert actions.answered(Invalid("empty_question")) == []


def test_an_upload_over_the_size_limit_is_refused_unread() -> None:
    assert actions.read_upload("a.pdf", b"x" * 2048, None, 0.001) == Refused("a.pdf", "too_big")


def test_an_unreadable_upload_says_why() -> None:
    outcome = actions.read_upload("roto.pdf", b"%PDF-1.4 not really", None, 10)
    assert isinstance(outcome, Refused)
    assert (outcome.reason, bool(outcome.detail)) == ("unreadable", True)


def test_an_upload_is_cut_to_the_served_limit_and_keeps_its_pages() -> None:
    data = minimal_pdf(["El río Amazonas desemboca en el Atlántico."])

    whole = actions.read_upload("notas.pdf", data, None, 10)
    cut = actions.read_upload("notas.pdf", data, 10, 10)

    assert isinstance(whole, Loaded)
    assert isinstance(cut, Loaded)
    assert not whole.truncated
    assert whole.document.text.strip() == "El río Amazonas desemboca en el Atlántico."
    assert (cut.truncated, cut.chars, cut.document.text) == (
        True,
        whole.chars,
        whole.document.text[:10],
    )
    assert cut.document.page_of(0) == 1

"""Streamlit UI: ask questions about a Spanish text. Layout and widgets; HTTP is in qa_ui.client.

Run: ``QA_UI_BACKEND_URL=http://localhost:8008 streamlit run streamlit/app.py``
"""

from __future__ import annotations

import logging
from typing import Any

import streamlit as st
import streamlit.components.v1 as components

from qa_ui import actions
from qa_ui import client as client_module
from qa_ui.actions import Answered, Compared, Failed, Invalid, Outcome, Stopped
from qa_ui.client import (
    BackendError,
    BackendHealth,
    BackendState,
    ModelLimits,
    ModelsInfo,
    Progress,
    QARequest,
    QAResult,
    curl_command,
)
from qa_ui.config import SettingsError, UISettings
from qa_ui.documents import Document
from qa_ui.examples import EXAMPLES, EXAMPLES_BY_KEY
from qa_ui.history import HistoryEntry, to_csv, to_json
from qa_ui.reading import can_read_all
from qa_ui.render import (
    alternatives_list,
    answer_card,
    document_view,
    duration,
    highlight_context,
    no_answer_card,
    snippet,
)
from qa_ui.texts import Lang, percent, progress_label, texts_for, thousands

logger = logging.getLogger("qa_ui.app")

POLL_NOT_READY_S = 3
POLL_READY_S = 15
# The model's limit is its default answer length; the API accepts longer ones on request.
MAX_ANSWER_LEN_CHOICE = 100
# A text longer than its box shows (about 2,000 characters) opens in a view scrolled to the answer.
SCROLLING_TEXT_CHARS = 2_000
FULL_TEXT_HEIGHT = 520


@st.cache_resource
def get_settings() -> UISettings:
    return UISettings.from_env()


@st.cache_resource
def get_client() -> client_module.QAClient:
    # Looked up on the module at call time: the tests' seam for a fake client.
    return client_module.QAClient(get_settings())


def current_lang() -> Lang:
    return "en" if st.session_state.get("lang_en", False) else "es"


# ---------------------------------------------------------------- callbacks (run before a rerun)


def load_example() -> None:
    example = EXAMPLES_BY_KEY.get(st.session_state.get("example") or "")
    if example is not None:
        st.session_state["context"] = example.context
        st.session_state["question"] = example.question
        st.session_state.pop("upload_message", None)


def load_upload(max_chars: int | None, max_upload_mb: float) -> None:
    uploaded = st.session_state.get("upload")
    if uploaded is None:
        st.session_state.pop("upload_message", None)
        return
    t = texts_for(current_lang())
    outcome = actions.read_upload(uploaded.name, uploaded.getvalue(), max_chars, max_upload_mb)
    if isinstance(outcome, actions.Refused):
        limit = f"{max_upload_mb:g}"
        message = t[f"upload_{outcome.reason}"]
        message = message.format(name=outcome.name, reason=outcome.detail, limit=limit)
        st.session_state["upload_message"] = ("error", message)
        return
    lang = current_lang()
    chars = thousands(outcome.chars, lang)
    if outcome.truncated and max_chars is not None:
        limit = thousands(max_chars, lang)
        text = t["upload_truncated"].format(name=outcome.name, chars=chars, limit=limit)
        st.session_state["upload_message"] = ("warning", text)
    else:
        text = t["upload_loaded"].format(name=outcome.name, chars=chars)
        st.session_state["upload_message"] = ("success", text)
    st.session_state["context"] = outcome.document.text
    st.session_state["document"] = outcome.document


def clip_context(max_chars: int | None) -> None:
    """On submit: a typed or pasted text over the served limit is cut, and the user told."""
    context = st.session_state.get("context") or ""
    if max_chars is None or len(context) <= max_chars:
        return
    lang = current_lang()
    message = texts_for(lang)["context_truncated"].format(
        chars=thousands(len(context), lang), limit=thousands(max_chars, lang)
    )
    st.session_state["upload_message"] = ("warning", message)
    st.session_state["context"] = context[:max_chars]


# ---------------------------------------------------------------- pieces of the page


def error_text(exc: BackendError, t: dict[str, str]) -> str:
    template = t.get(f"err_{exc.code}", t["err_generic"])
    return template.format(message=exc.message)


def show_error(exc: BackendError, t: dict[str, str]) -> None:
    st.error(error_text(exc, t), icon=":material/error:")
    if exc.request_id:
        st.caption(t["err_request_id"].format(request_id=exc.request_id))


def status_panel(client: client_module.QAClient, settings: UISettings, t: dict[str, str]) -> None:
    """Backend status, polled in the background; a change of state refreshes the whole page."""
    previous = st.session_state.get("health_state")
    every = POLL_READY_S if previous == BackendState.READY else POLL_NOT_READY_S

    @st.fragment(run_every=every)
    def panel() -> None:
        health = client.health()
        # Asked here too: health needs no API key, the model list does (a refused key shows).
        models = fetch_models(client, health)
        st.session_state["health"] = health
        st.session_state["models"] = models
        st.session_state["health_state"] = health.state
        if health.state != previous and not st.session_state.get("_full_run", False):
            st.rerun()
        render_health(health, models, settings, t)

    panel()


def state_label(state: str, t: dict[str, str]) -> str:
    """A model's loading state in the UI's language (unknown states as the API says them)."""
    return t.get(f"state_{state}", state)


def render_health(
    health: BackendHealth,
    models: ModelsInfo | BackendError | None,
    settings: UISettings,
    t: dict[str, str],
) -> None:
    if isinstance(models, BackendError) and models.code == "unauthorized":
        st.error(t["status_key_refused"].format(status=models.status), icon=":material/key_off:")
        st.caption(t["status_key_wrong" if settings.api_key else "status_key_missing"])
    elif health.state is BackendState.READY:
        st.success(t["status_ready"], icon=":material/check_circle:")
    elif health.state is BackendState.LOADING:
        st.warning(t["status_loading"], icon=":material/hourglass_top:")
        st.caption(t["status_loading_help"])
    elif health.state is BackendState.FAILED:
        st.error(t["status_failed"], icon=":material/error:")
        if health.reason:
            st.caption(health.reason)
    else:
        st.error(t["status_unreachable"], icon=":material/cloud_off:")
        st.caption(t["status_unreachable_help"].format(url=settings.backend_url))
    if health.models:
        listed = ", ".join(
            f"{name} ({state_label(state, t)})" for name, state in health.models.items()
        )
        st.caption(t["status_models"].format(models=listed))
    if health.state is not BackendState.READY:
        st.button(t["retry"], key="retry", icon=":material/refresh:")


def fetch_models(
    client: client_module.QAClient, health: BackendHealth
) -> ModelsInfo | BackendError | None:
    """The served models, or why they could not be listed (None: the backend is unreachable)."""
    if health.state is BackendState.UNREACHABLE:
        return None
    try:
        return client.models()
    except BackendError as exc:
        logger.warning("listing models failed: %s", exc.message)
        return exc


def remembered(key: str, default: int, low: int, high: int) -> dict[str, Any]:
    """Widget kwargs: the user's last value (kept inside a range that changes with the model),
    else the default. Passing both a value and a set session state makes Streamlit warn."""
    if key not in st.session_state:
        return {"key": key, "value": default}
    value = int(st.session_state[key])
    if not low <= value <= high:
        st.session_state[key] = max(low, min(high, value))
    return {"key": key}


def advanced_settings(
    models: ModelsInfo | None, settings: UISettings, t: dict[str, str]
) -> ModelLimits | None:
    """Model choice and decoding options; the ranges are the served ones (None: not known yet)."""
    st.subheader(t["advanced_header"])
    names = [m.name for m in models.models] if models else []

    def label(name: str) -> str:
        info = models.get(name) if models else None
        if info is not None and not info.ready:
            return t["model_not_ready"].format(name=name, status=state_label(info.status, t))
        if models and name == models.default:
            return t["model_default"].format(name=name)
        return name

    chosen = st.session_state.get("model")
    if chosen not in names:
        st.session_state.pop("model", None)
    elif st.session_state.get("model_shown") != label(chosen):
        # The closed box keeps the label it was last sent (the browser holds it): a new one
        # (language, readiness) goes out only with a value set here, so the choice is set again.
        st.session_state["model"] = chosen
    default_index = names.index(models.default) if models and models.default in names else 0
    # Once chosen, the key holds the choice: an index other than 0 beside a value set above
    # makes Streamlit log a warning, so only the first run passes the default's.
    index = 0 if "model" in st.session_state else default_index
    shown = st.selectbox(
        t["model_label"],
        names,
        index=index if names else None,
        format_func=label,
        key="model",
        disabled=not names,
    )
    st.session_state["model_shown"] = None if shown is None else label(shown)
    info = models.get(st.session_state.get("model")) if models else None
    if info is None:
        return None
    limits = info.limits
    longest_answer = max(limits.max_answer_len, MAX_ANSWER_LEN_CHOICE)
    st.slider(
        t["top_k_label"],
        min_value=1,
        max_value=max(limits.max_top_k, 2),
        **remembered("top_k", min(settings.top_k, limits.max_top_k), 1, limits.max_top_k),
    )
    st.slider(
        t["max_answer_len_label"],
        min_value=1,
        max_value=longest_answer,
        **remembered("max_answer_len", limits.max_answer_len, 1, longest_answer),
    )
    st.toggle(
        t["allow_no_answer_label"],
        value=True,
        key="allow_no_answer",
        help=t["allow_no_answer_help"],
    )
    return limits


def input_area(settings: UISettings, limits: ModelLimits | None, t: dict[str, str]) -> bool:
    """Examples, upload and the question form; True when the form was submitted."""
    max_chars = limits.max_document_chars if limits else None
    st.selectbox(
        t["example_label"],
        [e.key for e in EXAMPLES],
        index=None,
        format_func=lambda key: EXAMPLES_BY_KEY[key].title,
        placeholder=t["example_placeholder"],
        key="example",
        on_change=load_example,
    )
    st.file_uploader(
        t["upload_label"],
        type=["txt", "md", "pdf"],
        key="upload",
        max_upload_size=max(1, int(settings.max_upload_mb)),
        on_change=load_upload,
        args=(max_chars, settings.max_upload_mb),
    )
    message = st.session_state.get("upload_message")
    if message:
        kind, text = message
        {"error": st.error, "warning": st.warning, "success": st.success}[kind](text)

    with st.form(key="qa_form", border=True):
        # No max_chars: changing it makes a new widget (the typed text lost when the limits
        # come or change), and the browser drops a longer paste without a word. The limits
        # are applied on submit instead (clip_context, actions.check), with a message.
        st.text_area(
            t["context_label"], height=220, placeholder=t["context_placeholder"], key="context"
        )
        st.text_input(t["question_label"], placeholder=t["question_placeholder"], key="question")
        st.toggle(t["compare_toggle"], key="compare", help=t["compare_help"])
        submitted = st.form_submit_button(
            t["submit"],
            key="ask",
            type="primary",
            icon=":material/search:",
            width="stretch",
            on_click=clip_context,
            args=(max_chars,),
        )
    return submitted


def context_counter(limits: ModelLimits | None, lang: Lang, t: dict[str, str]) -> None:
    """The limits under the form, with the length of the text last sent (the box's own text is
    unknown until sent: it is inside a form). Drawn after the asking, so a send counts at once."""
    if limits is None:
        return
    limit = thousands(limits.max_document_chars, lang)
    sent: QARequest | None = st.session_state.get("last_request")
    size = (
        t["context_limit"].format(limit=limit)
        if sent is None
        else t["context_sent"].format(chars=thousands(len(sent.context), lang), limit=limit)
    )
    reading = t["context_reading"].format(whole=thousands(limits.max_context_chars, lang))
    st.caption(f"{size} · {reading}")


def form_values(settings: UISettings) -> actions.Form:
    """The form's widgets, read from the session (the read-all request is used once)."""
    state = st.session_state
    return actions.Form(
        context=state.get("context") or "",
        question=state.get("question") or "",
        model=state.get("model"),
        top_k=int(state.get("top_k", settings.top_k)),
        max_answer_len=state.get("max_answer_len"),
        allow_no_answer=bool(state.get("allow_no_answer", True)),
        read_all=bool(state.pop("read_all", False)),
    )


def read_all() -> None:
    """The "read everything" button: ask the same question again, reading every window."""
    st.session_state["read_all"] = True
    st.session_state["ask_again"] = True


def ask(
    client: client_module.QAClient,
    models: ModelsInfo | None,
    settings: UISettings,
    t: dict[str, str],
) -> None:
    """Run the asked action and keep its outcome (and what it adds to the history)."""
    limits: ModelLimits | None = st.session_state.get("limits")
    request = actions.build_request(form_values(settings), limits)
    invalid = actions.check(request, limits)
    if invalid is not None:
        # Shown once, above the previous answer, which stays: a blank field loses nothing.
        st.session_state["invalid"] = invalid
        return
    st.session_state["last_request"] = request
    outcome: Outcome
    if st.session_state.get("compare"):
        with st.spinner(t["thinking"]):
            outcome = actions.compare_ready(client, request, models)
    else:
        # Until the stream ends the outcome says "stopped": a stop or a page left ends the run.
        st.session_state["outcome"] = Stopped()
        outcome = ask_with_progress(client, request, t)
    history: list[HistoryEntry] = st.session_state.setdefault("history", [])
    history.extend(actions.answered(outcome))
    st.session_state["outcome"] = outcome


# ---------------------------------------------------------------- streaming answer (progress, stop)


def ask_with_progress(
    client: client_module.QAClient, request: QARequest, t: dict[str, str]
) -> Answered | Failed:
    """A bar with the time left for texts of several windows, and a stop button. Stopping or
    leaving ends this script run, which closes the stream: the backend drops the work left."""
    placeholder = st.empty()
    with placeholder.container():
        bar = st.progress(0.0, text=t["progress_start"])
        st.button(t["stop"], key="stop", icon=":material/stop_circle:")

    def show(event: Progress) -> None:
        label = progress_label(
            event.windows_done, event.windows_total, event.remaining_s, current_lang()
        )
        bar.progress(event.fraction, text=label)

    try:
        return actions.ask(client, request, show)
    finally:
        placeholder.empty()


# ---------------------------------------------------------------- answers


def score_text(score: float, lang: Lang, t: dict[str, str]) -> str:
    return t["confidence"].format(score=percent(score, lang))


def no_answer_html(result: QAResult, lang: Lang, t: dict[str, str]) -> str:
    probability = (
        None
        if result.no_answer_probability is None
        else t["no_answer_probability"].format(p=percent(result.no_answer_probability, lang))
    )
    return no_answer_card(t["no_answer_title"], t["no_answer_body"], probability)


def show_timings(result: QAResult, lang: Lang, t: dict[str, str]) -> None:
    st.markdown(f"**{t['latency']}**")
    timings = result.timings
    values = [
        ("t_queue", timings.queue_ms),
        ("t_tokenize", timings.tokenize_ms),
        ("t_inference", timings.inference_ms),
        ("t_decode", timings.decode_ms),
        ("t_total", timings.total_ms),
        ("t_round_trip", result.round_trip_ms),
    ]
    for row in (values[:3], values[3:]):
        for column, (key, value) in zip(st.columns(3), row, strict=True):
            column.metric(t[key], duration(value, lang))


def page_label(context: str, offset: int, t: dict[str, str]) -> str:
    """ "pág. 12" for an offset of the uploaded PDF's text; "" when the text is not one."""
    document: Document | None = st.session_state.get("document")
    if document is None or document.text != context:
        return ""
    page = document.page_of(offset)
    return "" if page is None else t["page"].format(page=page)


def show_passages(request: QARequest, result: QAResult, t: dict[str, str]) -> None:
    """Say that only some passages were read, with a one-click full read where one is allowed."""
    if not result.read_windows or len(result.read_windows) >= result.num_windows:
        return
    key = "passages_unmatched" if result.passages_matched is False else "passages_note"
    note = t[key].format(read=len(result.read_windows), total=result.num_windows)
    limits: ModelLimits | None = st.session_state.get("limits")
    with st.container(border=True, key="passages_note"):
        st.markdown(note)
        if limits is None or can_read_all(len(request.context), limits):
            st.button(
                t["read_all"], key="read_all_button", on_click=read_all, help=t["read_all_help"]
            )
        else:
            chars, limit = len(request.context), limits.max_context_chars
            lang = current_lang()
            st.caption(
                t["read_all_too_long"].format(
                    chars=thousands(chars, lang), limit=thousands(limit, lang)
                )
            )


def show_answer(request: QARequest, result: QAResult, lang: Lang, t: dict[str, str]) -> None:
    best = result.best
    labels = [score_text(a.score, lang, t) for a in result.answers]
    if result.no_answer or best is None:
        st.markdown(no_answer_html(result, lang, t), unsafe_allow_html=True)
        if result.answers:
            with st.expander(t["discarded_candidates"]):
                st.markdown(alternatives_list(result.answers, labels), unsafe_allow_html=True)
                st.markdown(
                    highlight_context(request.context, result.answers), unsafe_allow_html=True
                )
    else:
        st.markdown(f"**{t['best_answer']}**")
        st.markdown(answer_card(best.answer, labels[0], best.score), unsafe_allow_html=True)
        pages = [page_label(request.context, a.start, t) for a in result.answers]
        st.markdown(
            snippet(request.context, best, page_label=pages[0], css_class="qa-snippet"),
            unsafe_allow_html=True,
        )
        show_passages(request, result, t)
        if len(request.context) > SCROLLING_TEXT_CHARS:
            st.markdown(f"**{t['full_text']}**")
            buttons = [
                " · ".join(filter(None, [f"#{rank + 1} {a.answer}", label, pages[rank]]))
                for rank, (a, label) in enumerate(zip(result.answers, labels, strict=True))
            ]
            components.html(
                document_view(request.context, result.answers, buttons),
                height=FULL_TEXT_HEIGHT,
                scrolling=True,
            )
        else:
            st.markdown(f"**{t['in_context']}**")
            st.markdown(highlight_context(request.context, result.answers), unsafe_allow_html=True)
        if len(result.answers) > 1:
            st.markdown(f"**{t['alternatives']}**")
            st.markdown(alternatives_list(result.answers, labels), unsafe_allow_html=True)
    show_timings(result, lang, t)
    st.caption(
        t["result_meta"].format(
            model=result.model, windows=result.num_windows, request_id=result.request_id or "—"
        )
    )


def show_compare(compared: Compared, lang: Lang, t: dict[str, str]) -> None:
    st.subheader(t["compare_header"])
    if not compared.answers:
        st.info(t["compare_none"])
        return
    for start in range(0, len(compared.answers), 2):
        row = compared.answers[start : start + 2]
        for column, each in zip(st.columns(2), row, strict=False):
            with column.container(border=True):
                st.markdown(f"**{each.model}**")
                outcome = each.outcome
                if isinstance(outcome, BackendError):
                    show_error(outcome, t)
                    continue
                best = outcome.best
                if outcome.no_answer or best is None:
                    st.markdown(no_answer_html(outcome, lang, t), unsafe_allow_html=True)
                else:
                    card = answer_card(
                        best.answer, score_text(best.score, lang, t), best.score, size="1.15rem"
                    )
                    st.markdown(card, unsafe_allow_html=True)
                    st.markdown(snippet(compared.request.context, best), unsafe_allow_html=True)
                st.caption(
                    t["compare_latency"].format(
                        total=duration(outcome.timings.total_ms, lang),
                        round_trip=duration(outcome.round_trip_ms, lang),
                    )
                )


def show_outcome(lang: Lang, t: dict[str, str]) -> None:
    invalid: Invalid | None = st.session_state.pop("invalid", None)
    if invalid is not None:
        limit = thousands(invalid.limit, lang)
        st.warning(t[invalid.reason].format(limit=limit), icon=":material/edit_note:")
    outcome: Outcome | None = st.session_state.get("outcome")
    if isinstance(outcome, Failed):
        show_error(outcome.error, t)
    elif isinstance(outcome, Stopped):
        st.info(t["stopped"], icon=":material/stop_circle:")
    elif isinstance(outcome, Answered):
        show_answer(outcome.request, outcome.result, lang, t)
    elif isinstance(outcome, Compared):
        show_compare(outcome, lang, t)


def history_section(settings: UISettings, lang: Lang, t: dict[str, str]) -> None:
    history: list[HistoryEntry] = st.session_state.get("history", [])
    with st.expander(f"{t['history_header']} ({len(history)})", expanded=False):
        if not history:
            st.caption(t["history_empty"])
        else:
            rows = [
                {
                    t["col_time"]: e.time[11:],
                    t["col_model"]: e.model,
                    t["col_question"]: e.question,
                    t["col_answer"]: e.answer if not e.no_answer else f"— ({t['no_answer_title']})",
                    t["col_score"]: e.score,
                    t["col_ms"]: e.round_trip_ms,
                }
                for e in reversed(history)
            ]
            st.dataframe(rows, hide_index=True, key="history_table")
            *downloads, clear = st.columns(3)
            formats = [("csv", to_csv, "text/csv"), ("json", to_json, "application/json")]
            for column, (ext, export, mime) in zip(downloads, formats, strict=True):
                column.download_button(
                    t[f"download_{ext}"],
                    export(history),
                    file_name=f"historial_preguntas.{ext}",
                    mime=mime,
                    key=f"download_{ext}",
                    on_click="ignore",
                    icon=":material/download:",
                )
            if clear.button(t["clear_history"], key="clear_history"):
                st.session_state["history"] = []
                st.rerun()
    last: QARequest | None = st.session_state.get("last_request")
    if last is not None:
        with st.expander(t["curl_header"]):
            st.code(
                curl_command(settings.public_api_url, last, with_api_key=bool(settings.api_key)),
                language="bash",
            )


def page() -> None:
    lang = current_lang()
    t = texts_for(lang)
    settings = get_settings()
    client = get_client()

    with st.sidebar:
        st.toggle(t["language_toggle"], key="lang_en")
        st.subheader(t["status_header"])
        status_panel(client, settings, t)
        listed = st.session_state["models"]
        models = listed if isinstance(listed, ModelsInfo) else None
        limits = advanced_settings(models, settings, t)
        st.session_state["limits"] = limits

    st.title(t["title"])
    st.markdown(f"{t['instructions']}  \n[{t['docs_link']}]({settings.public_api_url}/docs)")
    left, right = st.columns(2, gap="large")
    with left:
        submitted = input_area(settings, limits, t)
    with right:
        if submitted or st.session_state.pop("ask_again", False):
            ask(client, models, settings, t)
        show_outcome(lang, t)
    with left:
        context_counter(limits, lang, t)
    history_section(settings, lang, t)


def main() -> None:
    st.set_page_config(
        page_title=texts_for(current_lang())["page_title"],
        page_icon=":material/help:",
        layout="wide",
    )
    st.session_state["_full_run"] = True
    try:
        page()
    except SettingsError as exc:
        st.error(str(exc))
    except Exception:
        # The user gets a sentence, the log gets the traceback.
        logger.exception("unexpected error while rendering the page")
        st.error(texts_for(current_lang())["unexpected"])
    finally:
        st.session_state["_full_run"] = False


main()

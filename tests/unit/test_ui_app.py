"""AppTest tests of the Streamlit UI with the backend client replaced at its seam."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from html import escape

import pytest
from streamlit.testing.v1 import AppTest

from qa_ui import client as client_module
from qa_ui.client import (
    BackendError,
    BackendState,
    BackendTimeout,
    Progress,
    QARequest,
    QAResult,
)
from qa_ui.examples import EXAMPLES_BY_KEY
from qa_ui.testing import FakeQAClient, make_models, make_result, minimal_pdf
from qa_ui.texts import progress_label

pytestmark = pytest.mark.unit

QUIJOTE = EXAMPLES_BY_KEY["quijote"]


def html_blocks(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def ask(at: AppTest, context: str | None = None, question: str | None = None) -> AppTest:
    if context is not None:
        at.text_area(key="context").input(context)
    if question is not None:
        at.text_input(key="question").input(question)
    at.button(key="ask").click().run()
    assert not at.exception
    return at


def test_first_load_shows_title_status_and_docs_link(app: Callable[[], AppTest]) -> None:
    at = app()

    assert at.title[0].value == "Pregunta lo que quieras sobre un texto"
    assert [s.value for s in at.sidebar.success] == ["Servidor listo"]
    assert "[Documentación de la API](http://qa.example:8008/docs)" in at.markdown[0].value
    assert at.text_area(key="context").value == ""
    assert at.selectbox(key="model").value == "beto"


def test_example_then_ask_highlights_answer_at_api_offsets(
    app: Callable[[], AppTest], fake: FakeQAClient
) -> None:
    fake.responder = lambda r: make_result(
        r.context, [("Miguel de Cervantes Saavedra", 0.91), ("Cervantes", 0.2)]
    )
    at = app()
    at.selectbox(key="example").select("quijote").run()
    assert at.text_area(key="context").value == QUIJOTE.context
    assert at.text_input(key="question").value == QUIJOTE.question

    ask(at)

    assert fake.calls == [
        QARequest(
            context=QUIJOTE.context,
            question=QUIJOTE.question,
            model="beto",
            top_k=3,
            max_answer_len=30,
            handle_impossible_answer=True,
        )
    ]
    page = html_blocks(at)
    assert '<div class="qa-best-text"' in page
    assert "Miguel de Cervantes Saavedra</div>" in page
    assert "Confianza: 91,0 %" in page
    start = QUIJOTE.context.index("Miguel")
    # Overlapping spans: the best answer colours the whole span, the second one is listed too.
    assert (
        escape(QUIJOTE.context[:start])
        + '<mark class="qa-answer qa-answer-0" data-rank="1" title="#1 0.910 · #2 0.200"'
    ) in page
    assert (
        'border-radius:0.25em;">Miguel de <span class="qa-nested" data-rank="2" '
        'style="box-shadow: inset 0 -0.3em 0 #81d4fa;">Cervantes</span> Saavedra</mark>. La'
    ) in page
    assert "Respuestas candidatas, de mejor a peor" in page
    assert [m.value for m in at.metric] == [
        "0,1 ms",
        "1,2 ms",
        "40 ms",
        "0,4 ms",
        "42 ms",
        "46 ms",
    ]


def test_highlight_uses_api_offsets_not_text_search(
    app: Callable[[], AppTest], fake: FakeQAClient
) -> None:
    context = "Ana llamó a Ana por teléfono."
    second = context.index("Ana", 1)

    def respond(request: QARequest) -> QAResult:
        result = make_result(request.context)
        answer = client_module.Answer(answer="Ana", score=0.7, start=second, end=second + 3)
        return QAResult(**{**result.__dict__, "answers": (answer,)})

    fake.responder = respond
    at = ask(app(), context, "¿A quién llamó Ana?")

    page = html_blocks(at)
    assert 'style="white-space: pre-wrap;' in page
    assert '>Ana llamó a <mark class="qa-answer qa-answer-0"' in page
    assert "</mark> por teléfono.</div>" in page


def test_empty_inputs_warn_without_calling_the_backend(
    app: Callable[[], AppTest], fake: FakeQAClient
) -> None:
    at = ask(app(), "   ", "¿Quién?")
    assert [w.value for w in at.warning] == ["Escribe o pega un texto antes de preguntar."]

    ask(at, "Un texto cualquiera.", "  ")
    assert [w.value for w in at.warning] == ["Escribe una pregunta."]
    assert fake.calls == []


def test_the_character_counter_names_both_limits_and_counts_only_what_was_sent(
    app: Callable[[], AppTest], fake: FakeQAClient
) -> None:
    """Up to 50,000 characters the text is read whole, up to 1,000,000 by passages. The box is
    in a form: its text is known once sent, so no count is shown before (never a false 0)."""
    reading = "hasta 50.000 se lee el texto entero; más largo, solo los pasajes más parecidos a la"
    at = app()
    assert [c.value for c in at.caption if "caracteres" in c.value] == [
        f"Hasta 1.000.000 caracteres · {reading} pregunta"
    ]

    fake.responder = lambda r: make_result(r.context)
    ask(at, "x" * 1077, "¿Qué?")
    assert [c.value for c in at.caption if "caracteres" in c.value] == [
        f"Último texto enviado: 1.077 de 1.000.000 caracteres · {reading} pregunta"
    ]

    at.toggle(key="lang_en").set_value(True).run()
    assert [c.value for c in at.caption if "characters" in c.value] == [
        "Last text sent: 1,077 of 1,000,000 characters · up to 50,000 the whole text is read; "
        "longer, only the passages most similar to the question"
    ]


def test_the_closed_model_box_follows_the_language(
    app: Callable[[], AppTest], fake: FakeQAClient
) -> None:
    """The browser shows the label it was last sent: a language switch must send the new one
    (it kept "beto (predeterminado)" in English), and the user's choice stays."""
    fake.models_info = make_models("tiny", "beto", default="beto")
    at = app()
    box = at.selectbox(key="model")
    assert box.value == "beto"
    assert box.options == ["tiny", "beto (predeterminado)"]

    at.toggle(key="lang_en").set_value(True).run()
    box = at.selectbox(key="model")
    assert box.value == "beto"
    assert box.options == ["tiny", "beto (default)"]
    assert box.proto.set_value
    assert box.proto.raw_value == "beto (default)"

    at.selectbox(key="model").select("tiny").run()
    at.toggle(key="lang_en").set_value(False).run()
    box = at.selectbox(key="model")
    assert box.value == "tiny"
    assert box.options == ["tiny", "beto (predeterminado)"]
    at.selectbox(key="model").select("beto").run()
    at.toggle(key="lang_en").set_value(True).run()
    box = at.selectbox(key="model")
    assert box.proto.raw_value == "beto (default)"
    assert box.value == "beto"
    assert not at.exception


def test_a_blank_question_keeps_the_previous_answer(
    app: Callable[[], AppTest], fake: FakeQAClient
) -> None:
    context = "Miguel de Cervantes nació en Alcalá de Henares."
    fake.responder = lambda r: make_result(r.context, [("Alcalá de Henares", 0.9)])
    at = ask(app(), context, "¿Dónde nació?")
    assert "Alcalá de Henares" in html_blocks(at)

    ask(at, context, "  ")

    assert [w.value for w in at.warning] == ["Escribe una pregunta."]
    assert "Alcalá de Henares</mark>" in html_blocks(at)  # the answer is still on screen
    assert len(fake.calls) == 1


def test_no_answer_state_shows_probability(app: Callable[[], AppTest], fake: FakeQAClient) -> None:
    fake.responder = lambda r: make_result(
        r.context, [("Machu Picchu", 0.04)], no_answer=True, no_answer_probability=0.87
    )
    at = app()
    at.selectbox(key="example").select("sin_respuesta").run()
    ask(at)

    page = html_blocks(at)
    assert ">No hay respuesta en el texto</div>" in page
    assert "Probabilidad de que no haya respuesta: 87,0 %" in page
    assert "qa-best-text" not in page
    assert at.expander[0].label == "Candidatos descartados"


def test_backend_down_is_a_clear_message_and_recovery_needs_no_restart(
    app: Callable[[], AppTest], fake: FakeQAClient
) -> None:
    fake.down = True
    at = app()
    assert [e.value for e in at.sidebar.error] == ["Servidor no disponible"]
    assert at.sidebar.button(key="retry").label == "Reintentar"

    ask(at, QUIJOTE.context, QUIJOTE.question)
    assert [e.value for e in at.main.error] == [
        "No se puede contactar con el servidor. Comprueba que está en marcha y vuelve a intentarlo."
    ]
    assert "ID de la petición: req-down" in [c.value for c in at.caption]
    assert not at.exception

    fake.down = False
    fake.responder = lambda r: make_result(r.context, [("Miguel de Cervantes Saavedra", 0.9)])
    at.sidebar.button(key="retry").click().run()
    assert [s.value for s in at.sidebar.success] == ["Servidor listo"]
    ask(at)
    assert not at.main.error
    assert "Miguel de Cervantes Saavedra</div>" in html_blocks(at)


def test_model_loading_is_shown_and_errors_are_translated(
    app: Callable[[], AppTest], fake: FakeQAClient
) -> None:
    fake.state = BackendState.LOADING
    fake.models_info = make_models("beto", ready=False)
    fake.error = BackendError("model beto is loading", code="model_not_ready", status=503)
    at = app()
    assert [w.value for w in at.sidebar.warning] == ["Cargando el modelo…"]
    assert at.sidebar.button(key="retry").label == "Reintentar"

    ask(at, QUIJOTE.context, QUIJOTE.question)
    assert [e.value for e in at.main.error] == [
        "El modelo todavía se está cargando. Espera unos segundos y vuelve a intentarlo."
    ]

    fake.error = BackendTimeout("the backend did not answer within 30 s")
    ask(at)
    assert at.main.error[0].value.startswith("El servidor ha tardado demasiado en responder.")

    fake.error = BackendError("context: too long", code="weird_code", status=500)
    ask(at)
    assert at.main.error[0].value == "El servidor respondió con un error: context: too long"


def test_compare_mode_asks_every_ready_model_side_by_side(
    app: Callable[[], AppTest], fake: FakeQAClient
) -> None:
    fake.models_info = make_models("beto", "distil", "broken")

    def respond(request: QARequest) -> QAResult:
        if request.model == "broken":
            raise BackendError("boom", code="internal_error", status=500)
        answer = {"beto": "Miguel de Cervantes Saavedra", "distil": "Cervantes"}[
            request.model or ""
        ]
        return make_result(request.context, [(answer, 0.8)], model=request.model or "")

    fake.responder = respond
    at = app()
    at.selectbox(key="example").select("quijote").run()
    at.toggle(key="compare").set_value(True)
    ask(at)

    assert [c.model for c in fake.calls] == ["beto", "distil", "broken"]
    assert [s.value for s in at.main.subheader] == ["Comparación de modelos"]
    page = html_blocks(at)
    for name in ("**beto**", "**distil**", "**broken**"):
        assert name in page
    assert "Miguel de Cervantes Saavedra</div>" in page
    assert ">Cervantes</div>" in page
    assert [e.value for e in at.main.error] == ["El servidor respondió con un error: boom"]
    assert sum("en el servidor" in c.value for c in at.caption) == 2
    assert at.expander[0].label == "Historial de la sesión (2)"


def test_html_and_script_in_context_are_shown_inert(
    app: Callable[[], AppTest], fake: FakeQAClient
) -> None:
    context = 'Hola <script>alert("x")</script> <img src=x onerror=alert(1)> soy <b>Juan</b>.'
    fake.responder = lambda r: make_result(r.context, [("<b>Juan</b>", 0.9)])
    at = ask(app(), context, "¿Quién soy?")

    page = html_blocks(at)
    assert "<script" not in page
    assert "<img" not in page
    assert "<b>Juan" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;b&gt;Juan&lt;/b&gt;</div>" in page  # the answer card


@pytest.mark.parametrize(
    ("name", "data", "mime"),
    [
        (
            "notas.md",
            "# Notas\n\nEl río Amazonas desemboca en el Atlántico.".encode(),
            "text/markdown",
        ),
        ("notas.txt", "El río Amazonas desemboca en el Atlántico.".encode("cp1252"), "text/plain"),
        (
            "notas.pdf",
            minimal_pdf(["El río Amazonas desemboca en el Atlántico."]),
            "application/pdf",
        ),
    ],
)
def test_uploaded_file_fills_the_context(
    app: Callable[[], AppTest], name: str, data: bytes, mime: str
) -> None:
    at = app()
    at.file_uploader(key="upload").set_value((name, data, mime)).run()

    assert at.text_area(key="context").value.endswith("El río Amazonas desemboca en el Atlántico.")
    assert at.main.success[0].value.startswith(f"Texto cargado de «{name}»")


def test_an_upload_over_the_limit_is_cut_and_the_numbers_read_as_numbers(
    app: Callable[[], AppTest],
) -> None:
    at = app()
    text = ("El río Amazonas desemboca en el Atlántico. " * 25_000).rstrip()  # 1,074,999 chars
    at.file_uploader(key="upload").set_value(("largo.txt", text.encode(), "text/plain")).run()
    assert len(at.text_area(key="context").value) == 1_000_000
    assert at.main.warning[0].value == (
        "El texto de «largo.txt» tenía 1.074.999 caracteres; se ha recortado a 1.000.000."
    )


def test_unreadable_upload_is_reported(app: Callable[[], AppTest]) -> None:
    at = app()
    at.file_uploader(key="upload").set_value(
        ("roto.pdf", b"%PDF-1.4 not really", "application/pdf")
    )
    at.run()

    assert at.error[-1].value.startswith("No se ha podido leer «roto.pdf»")
    assert at.text_area(key="context").value == ""


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("vacio.txt", b"", "«vacio.txt» está vacío: no tiene texto."),
        (
            "foto.txt",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
            "«foto.txt» no parece un archivo de texto",
        ),
    ],
)
def test_empty_or_binary_text_upload_is_refused(
    app: Callable[[], AppTest], name: str, data: bytes, message: str
) -> None:
    at = app()
    at.file_uploader(key="upload").set_value((name, data, "text/plain")).run()

    assert at.error[-1].value.startswith(message)
    assert at.text_area(key="context").value == ""


def test_advanced_settings_reach_the_request(
    app: Callable[[], AppTest], fake: FakeQAClient
) -> None:
    fake.models_info = make_models("beto", "distil")
    fake.responder = lambda r: make_result(r.context, [("1928", 0.9)], model=r.model or "")
    at = app()
    at.selectbox(key="model").select("distil")
    at.slider(key="top_k").set_value(5)
    at.slider(key="max_answer_len").set_value(12)
    at.toggle(key="allow_no_answer").set_value(False)
    at.selectbox(key="example").select("penicilina").run()
    ask(at)

    assert fake.calls[-1] == QARequest(
        context=EXAMPLES_BY_KEY["penicilina"].context,
        question=EXAMPLES_BY_KEY["penicilina"].question,
        model="distil",
        top_k=5,
        max_answer_len=12,
        handle_impossible_answer=False,
    )


def test_history_downloads_and_curl(app: Callable[[], AppTest], fake: FakeQAClient) -> None:
    fake.responder = lambda r: make_result(r.context, [("Miguel de Cervantes Saavedra", 0.91)])
    at = app()
    assert at.expander[0].label == "Historial de la sesión (0)"
    at.selectbox(key="example").select("quijote").run()
    ask(at)
    ask(at, question="¿Quién es el autor?")

    assert at.expander[0].label == "Historial de la sesión (2)"
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Descargar CSV", "Descargar JSON"]
    command, body, end = at.code[0].value.rsplit("\n", 2)  # the body in a heredoc
    words = shlex.split(command.replace("\\\n", " "))
    assert words[:5] == ["curl", "-sS", "-X", "POST", "http://qa.example:8008/v1/qa"]
    assert (words[-3:], end) == (["--data-binary", "@-", "<<JSON"], "JSON")
    payload = json.loads(body)
    assert payload["question"] == "¿Quién es el autor?"
    assert payload["top_k"] == 3

    at.button(key="clear_history").click().run()
    assert at.expander[0].label == "Historial de la sesión (0)"


def test_english_toggle_switches_every_string(
    app: Callable[[], AppTest], fake: FakeQAClient
) -> None:
    fake.down = True
    at = app()
    at.toggle(key="lang_en").set_value(True).run()

    assert at.title[0].value == "Ask anything about a text"
    assert [e.value for e in at.sidebar.error] == ["Server unavailable"]
    assert at.button(key="ask").label == "Ask"


def test_the_answer_comes_through_the_progress_stream(
    app: Callable[[], AppTest], fake: FakeQAClient
) -> None:
    """Asking reads POST /v1/qa/stream to its end (the bar is gone once the answer is shown)."""
    fake.progress = [Progress(0, 35, 0.05, 8.2), Progress(4, 35, 1.0, 7.1)]
    fake.responder = lambda r: make_result(r.context, [("Miguel de Cervantes Saavedra", 0.91)])
    at = app()
    at.selectbox(key="example").select("quijote").run()
    ask(at)

    assert "Miguel de Cervantes Saavedra" in html_blocks(at)
    assert fake.streams_closed == 1
    assert not at.info  # no "stopped" notice once answered
    assert not at.get("progress")


def test_progress_label_says_windows_and_time_left() -> None:
    assert progress_label(4, 35, 7.4, "es") == "Leídos 4 de 35 pasajes · quedan unos 7 s"
    assert progress_label(0, 35, None, "es") == "Leídos 0 de 35 pasajes"
    assert progress_label(34, 35, 0.6, "es") == "Leídos 34 de 35 pasajes · queda 1 s"
    assert progress_label(0, 1, None, "es") == "Leyendo el único pasaje"
    assert progress_label(0, 1, 2.2, "es") == "Leyendo el único pasaje · quedan unos 2 s"
    assert progress_label(34, 35, 0.2, "en") == "Read 34 of 35 passages · about 1 s left"
    assert progress_label(0, 1, None, "en") == "Reading the only passage"


@pytest.mark.parametrize(
    ("status", "api_key", "help_text"),
    [
        (401, None, "La interfaz no envía ninguna clave: pon en QA_UI_API_KEY"),
        (403, "vieja", "La clave de QA_UI_API_KEY no es la del servidor"),
    ],
)
def test_a_refused_api_key_is_said_in_the_status_panel(
    app: Callable[[], AppTest],
    fake: FakeQAClient,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    api_key: str | None,
    help_text: str,
) -> None:
    """Health needs no key, the model list does: the panel says the key is refused, not ready."""
    if api_key:
        monkeypatch.setenv("QA_UI_API_KEY", api_key)
    fake.models_error = BackendError("Missing or wrong API key", code="unauthorized", status=status)
    at = app()

    assert [e.value for e in at.sidebar.error] == [
        f"El servidor rechaza la clave de API (HTTP {status})"
    ]
    assert at.sidebar.success == []
    assert any(c.value.startswith(help_text) for c in at.sidebar.caption)

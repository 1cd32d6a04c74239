"""Every user-facing string of the UI, Spanish first, English as an option."""

from __future__ import annotations

from typing import Literal

Lang = Literal["es", "en"]

_ES: dict[str, str] = {
    "page_title": "Preguntas sobre un texto",
    "title": "Pregunta lo que quieras sobre un texto",
    "instructions": (
        "Pega un texto en español (o súbelo), escribe una pregunta y el modelo señalará "
        "en el texto el fragmento que la responde."
    ),
    "docs_link": "Documentación de la API",
    "language_toggle": "English",
    # Backend status
    "status_header": "Estado del servidor",
    "status_ready": "Servidor listo",
    "status_loading": "Cargando el modelo…",
    "status_loading_help": (
        "El modelo se está cargando; suele tardar unos segundos. Se comprueba solo."
    ),
    "status_failed": "El modelo no pudo cargarse",
    "status_unreachable": "Servidor no disponible",
    "status_unreachable_help": (
        "No se puede contactar con el servidor de preguntas en {url}. "
        "Comprueba que está en marcha; la app volverá a funcionar sola cuando responda."
    ),
    "status_models": "Modelos: {models}",
    "status_key_refused": "El servidor rechaza la clave de API (HTTP {status})",
    "status_key_missing": (
        "La interfaz no envía ninguna clave: pon en QA_UI_API_KEY la clave del servidor "
        "(su QA_API_KEY) y reinicia la interfaz."
    ),
    "status_key_wrong": (
        "La clave de QA_UI_API_KEY no es la del servidor: pon su QA_API_KEY y reinicia la interfaz."
    ),
    "state_ready": "listo",
    "state_loading": "cargando",
    "state_failed": "error",
    "retry": "Reintentar",
    # Inputs
    "example_label": "Ejemplos",
    "example_placeholder": "Elige un texto de ejemplo…",
    "upload_label": "…o sube un archivo (.txt, .md, .pdf)",
    "upload_loaded": "Texto cargado de «{name}» ({chars} caracteres).",
    "upload_truncated": "El texto de «{name}» tenía {chars} caracteres; se ha recortado a {limit}.",
    "upload_unsupported": "Tipo de archivo no admitido: usa .txt, .md o .pdf.",
    "upload_empty": "«{name}» está vacío: no tiene texto.",
    "upload_no_text": "No se ha encontrado texto en «{name}» (¿es un PDF escaneado?).",
    "upload_binary": (
        "«{name}» no parece un archivo de texto (tiene caracteres de control o binarios): "
        "guárdalo como texto (.txt) y vuelve a subirlo."
    ),
    "upload_unreadable": "No se ha podido leer «{name}»: {reason}",
    "upload_too_big": "El archivo «{name}» supera el máximo de {limit} MB.",
    "context_label": "Texto (contexto)",
    "context_placeholder": "Pega aquí el texto en el que buscar la respuesta…",
    # The box is in a form: what it holds is known only once sent, so the count is of that.
    "context_limit": "Hasta {limit} caracteres",
    "context_sent": "Último texto enviado: {chars} de {limit} caracteres",
    "context_reading": (
        "hasta {whole} se lee el texto entero; más largo, solo los pasajes más parecidos a la "
        "pregunta"
    ),
    "question_label": "Pregunta",
    "question_placeholder": "¿Quién escribió el Quijote?",
    "compare_toggle": "Comparar todos los modelos",
    "compare_help": (
        "Hace la misma pregunta a cada modelo del servidor y muestra las respuestas lado a lado."
    ),
    "submit": "Preguntar",
    "empty_context": "Escribe o pega un texto antes de preguntar.",
    "empty_question": "Escribe una pregunta.",
    "long_question": "La pregunta es demasiado larga: acórtala a {limit} caracteres como mucho.",
    "context_truncated": "El texto tenía {chars} caracteres; se ha recortado a {limit}.",
    "thinking": "Buscando la respuesta…",
    "progress_start": "Leyendo el texto…",
    "progress_passages": "Leídos {done} de {total} pasajes",
    "progress_one_passage": "Leyendo el único pasaje",
    "progress_left": " · quedan unos {left} s",
    "progress_left_one": " · queda 1 s",
    "stop": "Detener",
    "stopped": "Pregunta detenida: el servidor ha dejado de procesarla.",
    # Advanced settings
    "advanced_header": "Ajustes avanzados",
    "model_label": "Modelo",
    "model_default": "{name} (predeterminado)",
    "model_not_ready": "{name} ({status})",
    "top_k_label": "Número de respuestas",
    "max_answer_len_label": "Longitud máxima de la respuesta (tokens)",
    "allow_no_answer_label": "Permitir «sin respuesta»",
    "allow_no_answer_help": (
        "Si el texto no contiene la respuesta, el modelo puede decirlo en lugar de inventar una."
    ),
    # Results
    "best_answer": "Respuesta",
    "confidence": "Confianza: {score}",
    "no_answer_title": "No hay respuesta en el texto",
    "no_answer_body": "El modelo cree que el texto no responde a esta pregunta.",
    "no_answer_probability": "Probabilidad de que no haya respuesta: {p}",
    "discarded_candidates": "Candidatos descartados",
    "in_context": "La respuesta en el texto",
    "alternatives": "Respuestas candidatas, de mejor a peor",
    "rank": "n.º {rank}",
    "latency": "Tiempos",
    "t_queue": "Cola",
    "t_tokenize": "Tokenización",
    "t_inference": "Inferencia",
    "t_decode": "Decodificación",
    "t_total": "Total servidor",
    "t_round_trip": "Ida y vuelta",
    "result_meta": "Modelo {model} · {windows} ventana(s) · petición {request_id}",
    "passages_note": (
        "Se leyeron {read} de los {total} pasajes, los más parecidos a la pregunta; "
        "el resto del texto no se ha leído."
    ),
    "passages_unmatched": (
        "Ninguna palabra de la pregunta aparece en el texto, así que se leyeron los {read} "
        "primeros pasajes de {total}: la respuesta puede estar en otro. Pregunta con palabras "
        "del texto, o lee todo."
    ),
    "read_all": "Leer todo",
    "read_all_help": "Lee el texto entero: tarda más, pero no se salta nada.",
    "read_all_too_long": (
        "El texto es demasiado largo para leerlo entero ({chars} caracteres; máximo {limit})."
    ),
    "page": "pág. {page}",
    "full_text": "El texto completo, abierto en la respuesta (pulsa una respuesta para ir a ella)",
    "compare_header": "Comparación de modelos",
    "compare_none": "El servidor no ofrece ningún modelo listo para comparar.",
    "compare_latency": "{total} en el servidor · {round_trip} ida y vuelta",
    # History
    "history_header": "Historial de la sesión",
    "history_empty": "Aún no has hecho ninguna pregunta.",
    "download_csv": "Descargar CSV",
    "download_json": "Descargar JSON",
    "clear_history": "Borrar historial",
    "curl_header": "Copiar como curl (última petición)",
    "col_time": "Hora",
    "col_model": "Modelo",
    "col_question": "Pregunta",
    "col_answer": "Respuesta",
    "col_score": "Puntuación",
    "col_ms": "ms",
    # Errors
    "err_unreachable": (
        "No se puede contactar con el servidor. Comprueba que está en marcha y vuelve a intentarlo."
    ),
    "err_timeout": (
        "El servidor ha tardado demasiado en responder. Prueba con un texto más corto o inténtalo"
        " de nuevo."
    ),
    "err_model_not_ready": (
        "El modelo todavía se está cargando. Espera unos segundos y vuelve a intentarlo."
    ),
    "err_overloaded": (
        "El servidor está saturado en este momento. Inténtalo de nuevo en unos segundos."
    ),
    "err_payload_too_large": (
        "El texto es demasiado largo para el servidor. Acórtalo e inténtalo de nuevo."
    ),
    "err_validation_error": "El servidor no acepta estos datos: {message}",
    "err_unauthorized": "El servidor exige una clave de API válida (variable QA_UI_API_KEY).",
    "err_model_not_found": "El servidor no tiene ese modelo. Elige otro en los ajustes avanzados.",
    "err_generic": "El servidor respondió con un error: {message}",
    "err_request_id": "ID de la petición: {request_id}",
    "unexpected": "Algo ha fallado en la aplicación. Recarga la página e inténtalo de nuevo.",
}

_EN: dict[str, str] = {
    "page_title": "Questions about a text",
    "title": "Ask anything about a text",
    "instructions": (
        "Paste a Spanish text (or upload one), type a question and the model will point at "
        "the passage of the text that answers it."
    ),
    "docs_link": "API documentation",
    "language_toggle": "English",
    "status_header": "Server status",
    "status_ready": "Server ready",
    "status_loading": "Loading the model…",
    "status_loading_help": (
        "The model is loading; this usually takes a few seconds. Checked automatically."
    ),
    "status_failed": "The model failed to load",
    "status_unreachable": "Server unavailable",
    "status_unreachable_help": (
        "The question-answering server at {url} cannot be reached. Check that it is running; "
        "the app recovers by itself once it answers."
    ),
    "status_models": "Models: {models}",
    "status_key_refused": "The server refuses the API key (HTTP {status})",
    "status_key_missing": (
        "The UI sends no key: set QA_UI_API_KEY to the server's key (its QA_API_KEY) and "
        "restart the UI."
    ),
    "status_key_wrong": (
        "The key in QA_UI_API_KEY is not the server's: set it to the server's QA_API_KEY and "
        "restart the UI."
    ),
    "state_ready": "ready",
    "state_loading": "loading",
    "state_failed": "failed",
    "retry": "Retry",
    "example_label": "Examples",
    "example_placeholder": "Pick an example text…",
    "upload_label": "…or upload a file (.txt, .md, .pdf)",
    "upload_loaded": "Text loaded from “{name}” ({chars} characters).",
    "upload_truncated": "“{name}” had {chars} characters; it was cut to {limit}.",
    "upload_unsupported": "Unsupported file type: use .txt, .md or .pdf.",
    "upload_empty": "“{name}” is empty: it has no text.",
    "upload_no_text": "No text found in “{name}” (a scanned PDF?).",
    "upload_binary": (
        "“{name}” does not look like a text file (it has control or binary characters): "
        "save it as text (.txt) and upload it again."
    ),
    "upload_unreadable": "“{name}” could not be read: {reason}",
    "upload_too_big": "“{name}” is larger than the {limit} MB maximum.",
    "context_label": "Text (context)",
    "context_placeholder": "Paste the text to search for the answer…",
    "context_limit": "Up to {limit} characters",
    "context_sent": "Last text sent: {chars} of {limit} characters",
    "context_reading": (
        "up to {whole} the whole text is read; longer, only the passages most similar to the "
        "question"
    ),
    "question_label": "Question",
    "question_placeholder": "¿Quién escribió el Quijote?",
    "compare_toggle": "Compare all models",
    "compare_help": (
        "Asks every model of the server the same question and shows the answers side by side."
    ),
    "submit": "Ask",
    "empty_context": "Type or paste a text before asking.",
    "empty_question": "Type a question.",
    "long_question": "The question is too long: shorten it to {limit} characters at most.",
    "context_truncated": "The text had {chars} characters; it was cut to {limit}.",
    "thinking": "Looking for the answer…",
    "progress_start": "Reading the text…",
    "progress_passages": "Read {done} of {total} passages",
    "progress_one_passage": "Reading the only passage",
    "progress_left": " · about {left} s left",
    "progress_left_one": " · about 1 s left",
    "stop": "Stop",
    "stopped": "Question stopped: the server no longer works on it.",
    "advanced_header": "Advanced settings",
    "model_label": "Model",
    "model_default": "{name} (default)",
    "model_not_ready": "{name} ({status})",
    "top_k_label": "Number of answers",
    "max_answer_len_label": "Maximum answer length (tokens)",
    "allow_no_answer_label": "Allow “no answer”",
    "allow_no_answer_help": (
        "When the text does not hold the answer, the model may say so instead of guessing."
    ),
    "best_answer": "Answer",
    "confidence": "Confidence: {score}",
    "no_answer_title": "The text has no answer",
    "no_answer_body": "The model thinks the text does not answer this question.",
    "no_answer_probability": "Probability of no answer: {p}",
    "discarded_candidates": "Discarded candidates",
    "in_context": "The answer in the text",
    "alternatives": "Candidate answers, best first",
    "rank": "#{rank}",
    "latency": "Timings",
    "t_queue": "Queue",
    "t_tokenize": "Tokenization",
    "t_inference": "Inference",
    "t_decode": "Decoding",
    "t_total": "Server total",
    "t_round_trip": "Round trip",
    "result_meta": "Model {model} · {windows} window(s) · request {request_id}",
    "passages_note": (
        "Read {read} of the {total} passages, the ones most similar to the question; "
        "the rest of the text was not read."
    ),
    "passages_unmatched": (
        "No word of the question occurs in the text, so the first {read} of {total} passages "
        "were read: the answer may be in another. Ask with words of the text, or read it all."
    ),
    "read_all": "Read everything",
    "read_all_help": "Reads the whole text: slower, but nothing is skipped.",
    "read_all_too_long": (
        "The text is too long to read whole ({chars} characters; at most {limit})."
    ),
    "page": "p. {page}",
    "full_text": "The full text, opened at the answer (click an answer to go to it)",
    "compare_header": "Model comparison",
    "compare_none": "The server offers no ready model to compare.",
    "compare_latency": "{total} on the server · {round_trip} round trip",
    "history_header": "Session history",
    "history_empty": "No questions asked yet.",
    "download_csv": "Download CSV",
    "download_json": "Download JSON",
    "clear_history": "Clear history",
    "curl_header": "Copy as curl (last request)",
    "col_time": "Time",
    "col_model": "Model",
    "col_question": "Question",
    "col_answer": "Answer",
    "col_score": "Score",
    "col_ms": "ms",
    "err_unreachable": "The server cannot be reached. Check that it is running and try again.",
    "err_timeout": "The server took too long to answer. Try a shorter text or try again.",
    "err_model_not_ready": "The model is still loading. Wait a few seconds and try again.",
    "err_overloaded": "The server is busy right now. Try again in a few seconds.",
    "err_payload_too_large": "The text is too long for the server. Shorten it and try again.",
    "err_validation_error": "The server does not accept this input: {message}",
    "err_unauthorized": "The server needs a valid API key (QA_UI_API_KEY).",
    "err_model_not_found": (
        "The server has no such model. Pick another one in the advanced settings."
    ),
    "err_generic": "The server answered with an error: {message}",
    "err_request_id": "Request ID: {request_id}",
    "unexpected": "Something went wrong in the app. Reload the page and try again.",
}

TEXTS: dict[Lang, dict[str, str]] = {"es": _ES, "en": _EN}


def texts_for(lang: Lang) -> dict[str, str]:
    return TEXTS[lang]


def percent(value: float, lang: Lang = "es") -> str:
    """0.912 -> '91,2 %' in Spanish, '91.2%' in English."""
    text = f"{value * 100:.1f}"
    return f"{text.replace('.', ',')} %" if lang == "es" else f"{text}%"


def millis(value: float, lang: Lang = "es") -> str:
    text = f"{value:.1f}"
    return f"{text.replace('.', ',')} ms" if lang == "es" else f"{text} ms"


def thousands(value: int, lang: Lang = "es") -> str:
    """50000 -> '50.000' in Spanish, '50,000' in English."""
    text = f"{value:,}"
    return text.replace(",", ".") if lang == "es" else text


def progress_label(done: int, total: int, remaining_s: float | None, lang: Lang = "es") -> str:
    """The progress bar's text: passages read of all (the UI's word for the backend's windows),
    and the seconds left when estimated; singulars said as such."""
    t = TEXTS[lang]
    if total == 1:
        label = t["progress_one_passage"]
    else:
        label = t["progress_passages"].format(done=done, total=total)
    if remaining_s is None:
        return label
    left = max(1, round(remaining_s))
    return label + (t["progress_left_one"] if left == 1 else t["progress_left"].format(left=left))

"""Spanish example contexts with questions, one of them with no answer in its text."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    key: str
    title: str
    context: str
    question: str
    expected: str | None
    """The answer a good model gives; None when the text does not answer the question."""


EXAMPLES: tuple[Example, ...] = (
    Example(
        key="quijote",
        title="El Quijote",
        context=(
            "El ingenioso hidalgo don Quijote de la Mancha es una novela escrita por Miguel de "
            "Cervantes Saavedra. La primera parte se publicó en Madrid en 1605 y la segunda, "
            "diez años más tarde, en 1615. Cuenta las aventuras de Alonso Quijano, un hidalgo "
            "que enloquece de tanto leer libros de caballerías y sale a recorrer los caminos "
            "acompañado de su escudero, Sancho Panza."
        ),
        question="¿Quién escribió el Quijote?",
        expected="Miguel de Cervantes Saavedra",
    ),
    Example(
        key="amazonas",
        title="El río Amazonas",
        context=(
            "El Amazonas nace en los Andes del sur de Perú y recorre cerca de 7.000 kilómetros "
            "hasta desembocar en el océano Atlántico, en el norte de Brasil. Es el río más "
            "caudaloso del mundo: vierte al mar más agua que los siete ríos que le siguen "
            "juntos. Su cuenca ocupa unos siete millones de kilómetros cuadrados y alberga la "
            "mayor selva tropical del planeta."
        ),
        question="¿Dónde desemboca el Amazonas?",
        expected="en el océano Atlántico",
    ),
    Example(
        key="penicilina",
        title="La penicilina",
        context=(
            "En septiembre de 1928, al volver de vacaciones a su laboratorio del hospital de "
            "St. Mary, en Londres, Alexander Fleming observó que un moho había contaminado una "
            "de sus placas de cultivo y que alrededor de él no crecían las bacterias. Aquel "
            "moho, Penicillium notatum, producía la sustancia que Fleming llamó penicilina. Su "
            "uso como medicamento no se generalizó hasta la década de 1940."
        ),
        question="¿En qué año descubrió Fleming la penicilina?",
        expected="1928",
    ),
    Example(
        key="alhambra",
        title="La Alhambra",
        context=(
            "La Alhambra es un conjunto de palacios y fortalezas situado sobre la colina de la "
            "Sabika, en Granada. Su construcción principal se debe a la dinastía nazarí, que "
            "gobernó el reino de Granada entre los siglos XIII y XV. Tras la toma de la ciudad "
            "por los Reyes Católicos en 1492, Carlos V mandó levantar dentro del recinto un "
            "palacio renacentista."
        ),
        question="¿Qué dinastía construyó la Alhambra?",
        expected="la dinastía nazarí",
    ),
    Example(
        key="sin_respuesta",
        title="Machu Picchu (pregunta sin respuesta en el texto)",
        context=(
            "Machu Picchu es una antigua ciudad inca construida en el siglo XV en lo alto de una "
            "montaña de los Andes peruanos, a unos 2.430 metros sobre el nivel del mar. Sus "
            "terrazas, templos y muros de piedra encajada sin argamasa la han convertido en uno "
            "de los destinos más visitados de Sudamérica."
        ),
        question="¿Cuántos habitantes tiene Lima?",
        expected=None,
    ),
)

EXAMPLES_BY_KEY: dict[str, Example] = {e.key: e for e in EXAMPLES}

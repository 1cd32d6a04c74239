"""Build random-weight BERT QA models (tiny for tests, BETO-shaped for benchmarks), fully offline.

The weights are random, so answers are meaningless, but the files are a real Hugging Face model
directory (config, safetensors, WordPiece tokenizer) that goes through the product's real loading
and inference path. BETO-shaped means the same architecture and compute as the served model.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

logger = logging.getLogger(__name__)

Size = Literal["tiny", "beto"]

# dccuchile/bert-base-spanish-wwm-cased, the base of the served model.
BETO_CONFIG: dict[str, Any] = {
    "vocab_size": 31002,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
}
TINY_CONFIG: dict[str, Any] = {
    "vocab_size": 4000,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
}
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# The vocabulary's corpus when no SQuAD JSON files are given.
FALLBACK_TEXTS = [
    "Miguel de Cervantes escribió Don Quijote de la Mancha, publicado en 1605 en Madrid.",
    "El río Ebro nace en Fontibre, Cantabria, y desemboca en el mar Mediterráneo.",
    "La Alhambra de Granada fue construida por la dinastía nazarí entre los siglos XIII y XIV.",
    "¿Quién pintó Las Meninas? Diego Velázquez la pintó en 1656 para el rey Felipe IV.",
    "El pingüino emperador vive en la Antártida y puede bucear a más de quinientos metros.",
    "¡La niña comió una piña y un ñandú corrió por el campo en pleno otoño!",
]


def squad_texts(data_dir: Path) -> Iterator[str]:
    """Yield every context and question of the SQuAD JSON files in data_dir."""
    for path in sorted(data_dir.glob("*.json")):
        for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
            for paragraph in article["paragraphs"]:
                yield paragraph["context"]
                for qa in paragraph["qas"]:
                    yield qa["question"]


def _training_texts(data_dir: Path | None) -> list[str]:
    if data_dir is None:
        return FALLBACK_TEXTS * 50
    texts = list(squad_texts(data_dir))
    if not texts:
        raise FileNotFoundError(f"no SQuAD JSON files with text in {data_dir}")
    return texts


def train_wordpiece_vocab(texts: Iterable[str], vocab_size: int, out_dir: Path) -> Path:
    """Train a cased Spanish WordPiece vocabulary (accents kept, like BETO) and save vocab.txt."""
    from tokenizers import BertWordPieceTokenizer

    tokenizer = BertWordPieceTokenizer(lowercase=False, strip_accents=False, clean_text=True)
    tokenizer.train_from_iterator(
        texts, vocab_size=vocab_size, min_frequency=1, special_tokens=SPECIAL_TOKENS
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_model(str(out_dir))
    return out_dir / "vocab.txt"


def build_random_qa_model(
    out_dir: str | Path, size: Size = "tiny", data_dir: Path | None = None, seed: int = 0
) -> Path:
    """Write a random-weight BertForQuestionAnswering + fast tokenizer to out_dir and return it."""
    import torch

    # transformers 5: BertTokenizer is the fast, tokenizers-backed one (BertTokenizerFast an alias).
    from transformers import BertConfig, BertForQuestionAnswering, BertTokenizer

    out = Path(out_dir)
    if (out / "config.json").exists():
        return out
    shape = BETO_CONFIG if size == "beto" else TINY_CONFIG
    with tempfile.TemporaryDirectory() as tmp:
        vocab = train_wordpiece_vocab(_training_texts(data_dir), shape["vocab_size"], Path(tmp))
        tokenizer = BertTokenizer(vocab=str(vocab), do_lower_case=False, strip_accents=False)
    torch.manual_seed(seed)
    # The model's embedding table keeps the target size even if the trained vocab came out smaller.
    config = BertConfig(**shape)
    model = BertForQuestionAnswering(config).eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    logger.info("random %s QA model written to %s", size, out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="output model directory")
    parser.add_argument("--size", choices=["tiny", "beto"], default="tiny")
    parser.add_argument("--data-dir", type=Path, default=None, help="SQuAD JSONs for the vocab")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    print(build_random_qa_model(args.out, args.size, args.data_dir))


if __name__ == "__main__":
    main()

"""Build random-weight BERT QA models (tiny for tests, BETO-shaped for benchmarks), fully offline.

The weights are random, so answers are meaningless, but the files are a real Hugging Face model
directory (config, safetensors, WordPiece tokenizer) that goes through the product's real loading
and inference path. BETO-shaped means the same architecture and compute as the served model.
Deterministic: the same arguments give the same files byte for byte (tests/golden relies on it),
so the vocabulary is counted here rather than trained by `tokenizers`, whose trainer breaks ties
in hash order and changes the vocabulary from one run to the next.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from collections import Counter
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


def wordpiece_vocab(texts: Iterable[str], vocab_size: int, lowercase: bool = False) -> list[str]:
    """A Spanish WordPiece vocabulary counted from texts, in a fixed order.

    Every character seen (alone and as a `##` continuation) is in it, so no word becomes [UNK];
    the rest are the most frequent whole words, word starts and `##` word ends, ties broken by
    the piece itself. Cased with accents like BETO, unless lowercase (which also strips accents).
    """
    from tokenizers.normalizers import BertNormalizer
    from tokenizers.pre_tokenizers import BertPreTokenizer

    normalizer = BertNormalizer(clean_text=True, strip_accents=lowercase, lowercase=lowercase)
    pre_tokenizer = BertPreTokenizer()
    words: Counter[str] = Counter()
    for text in texts:
        normalized = normalizer.normalize_str(text)
        words.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalized))
    chars = {word[0] for word in words} | {f"##{c}" for word in words for c in word[1:]}
    pieces: Counter[str] = Counter()
    for word, count in words.items():
        for i in range(2, len(word) + 1):
            pieces[word[:i]] += count
        for i in range(1, len(word) - 1):
            pieces[f"##{word[i:]}"] += count
    vocab = SPECIAL_TOKENS + sorted(chars - set(SPECIAL_TOKENS))
    ranked = sorted(pieces.items(), key=lambda item: (-item[1], item[0]))
    vocab += [piece for piece, _ in ranked[: max(0, vocab_size - len(vocab))]]
    return vocab


def write_vocab(vocab: list[str], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "vocab.txt"
    path.write_text("".join(f"{token}\n" for token in vocab), encoding="utf-8")
    return path


def build_random_qa_model(
    out_dir: str | Path,
    size: Size = "tiny",
    data_dir: Path | None = None,
    seed: int = 0,
    lowercase: bool = False,
) -> Path:
    """Write a random-weight BertForQuestionAnswering + fast tokenizer to out_dir and return it.

    lowercase: a tokenizer that lowercases and strips accents (`do_lower_case`, `strip_accents`).
    """
    import torch

    # transformers 5: BertTokenizer is the fast, tokenizers-backed one (BertTokenizerFast an alias).
    from transformers import BertConfig, BertForQuestionAnswering, BertTokenizer

    out = Path(out_dir)
    if (out / "config.json").exists():
        return out
    shape = BETO_CONFIG if size == "beto" else TINY_CONFIG
    with tempfile.TemporaryDirectory() as tmp:
        words = wordpiece_vocab(_training_texts(data_dir), shape["vocab_size"], lowercase)
        tokenizer = BertTokenizer(
            vocab=str(write_vocab(words, Path(tmp))),
            do_lower_case=lowercase,
            strip_accents=lowercase,
        )
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
    parser.add_argument("--lowercase", action="store_true", help="lowercase, strip accents")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    print(build_random_qa_model(args.out, args.size, args.data_dir, lowercase=args.lowercase))


if __name__ == "__main__":
    main()

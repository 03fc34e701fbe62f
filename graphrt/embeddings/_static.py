"""A small offline semantic embedder: one distilled vector per word-piece token, summed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from graphrt.embeddings._base import Embeddings, check_texts

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = ("DEFAULT_MODEL_DIR", "StaticEmbeddings")

DEFAULT_MODEL_DIR = Path(__file__).resolve().with_name("_static_model")
"""The packaged model, distilled from all-MiniLM-L6-v2 by `scripts/distill_embedder.py`."""

_CHUNK = 2048  # texts per tokenizer call and row gather
_MISSING_TOKENIZERS = "StaticEmbeddings needs tokenizers: pip install 'graphrt[embeddings]'"


@dataclass(frozen=True, slots=True)
class StaticModel:
    """A loaded static model, shared by every `StaticEmbeddings` that uses the same folder."""

    tokenizer: Tokenizer
    """Splits text into word pieces; no padding, no truncation."""
    vectors: npt.NDArray[np.float32]
    """One row per token id; the rows of `[UNK]` and `[PAD]` are zero so they add nothing."""


def _import_tokenizers() -> type[Tokenizer]:
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise ImportError(_MISSING_TOKENIZERS) from exc
    return Tokenizer


@lru_cache(maxsize=4)
def load_static_model(folder: Path) -> StaticModel:
    """Load `tokenizer.json` and `vectors.npy` (float rows, or int8 rows with `scales.npy`) from `folder`."""
    tokenizer_class = _import_tokenizers()
    missing = [name for name in ("tokenizer.json", "vectors.npy") if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"StaticEmbeddings: {folder} is not a static model folder (missing {', '.join(missing)}); "
            "make one with scripts/distill_embedder.py --out FOLDER"
        )
    tokenizer = tokenizer_class.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    vectors = np.load(folder / "vectors.npy", allow_pickle=False).astype(np.float32)
    if (folder / "scales.npy").is_file():
        vectors *= np.load(folder / "scales.npy", allow_pickle=False).astype(np.float32)[:, None]
    if vectors.ndim != 2 or vectors.shape[0] != tokenizer.get_vocab_size(with_added_tokens=True):
        raise ValueError(
            f"StaticEmbeddings: {folder}/vectors.npy has shape {vectors.shape}, but the tokenizer has "
            f"{tokenizer.get_vocab_size(with_added_tokens=True)} tokens; the files come from different models"
        )
    # Unknown and padding pieces carry no meaning: zero rows let the encoder sum without filtering them.
    for token in ("[UNK]", "[PAD]"):
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            vectors[token_id] = 0.0
    vectors.flags.writeable = False
    return StaticModel(tokenizer=tokenizer, vectors=vectors)


class StaticEmbeddings(Embeddings):
    """Embeds texts offline with a static model: the L2-normalised sum of its word pieces' vectors.

    `StaticEmbeddings()` loads the model packaged with graphrt: 256 dimensions, distilled from the
    Apache-2.0 sentence model all-MiniLM-L6-v2 (see `_static_model/README.txt` and LICENSE.txt). It knows
    that "pizza" is food and "name" relates to "called", at a small fraction of a transformer's cost, and
    needs only numpy and `tokenizers` (`pip install 'graphrt[embeddings]'`). A text with no known word
    pieces (empty, or only unknown symbols) embeds as the zero vector.

    Args:
        path: A folder with `tokenizer.json` and `vectors.npy` (and `scales.npy` for int8 rows), as
            written by `scripts/distill_embedder.py`. Defaults to the packaged model.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        _import_tokenizers()  # fail with the install hint even when a model is already cached
        folder = DEFAULT_MODEL_DIR if path is None else Path(path).resolve()
        self._model = load_static_model(folder)
        self._folder = folder

    def __repr__(self) -> str:
        if self._folder == DEFAULT_MODEL_DIR:
            return "StaticEmbeddings()"
        return f"StaticEmbeddings({str(self._folder)!r})"

    @property
    def dims(self) -> int:
        """Length of every vector."""
        return int(self._model.vectors.shape[1])

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed each text; returns one vector per text, in order."""
        texts = check_texts("StaticEmbeddings", texts)
        if not texts:
            return []
        result: list[list[float]] = self.encode(texts).tolist()
        return result

    def embed_query(self, text: str) -> list[float]:
        """Embed one search query."""
        return self.embed_documents([text])[0]

    def encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """Embed `texts` into a float32 array of shape (len(texts), dims), rows of unit length or zero."""
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        # Chunks bound the gathered token rows (tokens x dims floats) when a caller passes a huge list.
        for start in range(0, len(texts), _CHUNK):
            out[start : start + _CHUNK] = self._encode_chunk(texts[start : start + _CHUNK])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out

    def _encode_chunk(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """Sum each text's token rows; a text without known pieces gets a zero row."""
        vectors = self._model.vectors
        encodings = self._model.tokenizer.encode_batch(texts, add_special_tokens=False)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.intp, count=len(encodings))
        ids = np.fromiter(chain.from_iterable(e.ids for e in encodings), dtype=np.intp, count=int(lengths.sum()))
        sums = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        filled = lengths > 0
        if ids.size:
            starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
            # Empty texts have zero-length segments; leaving their starts out keeps each sum to its own text.
            sums[filled] = np.add.reduceat(vectors[ids], starts[filled], axis=0)
        return sums

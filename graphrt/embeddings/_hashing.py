"""A deterministic, dependency-free bag-of-words embedder for tests and examples."""

from __future__ import annotations

import hashlib
import math
import re
from functools import lru_cache

from graphrt.embeddings._base import Embeddings, check_texts

__all__ = ("HashingEmbeddings",)

_WORD = re.compile(r"\w+")
_PERSON = b"graphrt-hashemb"  # keys the hash so vectors differ from other blake2b bucketings


@lru_cache(maxsize=65_536)
def _bucket(word: str, dims: int) -> tuple[int, float]:
    """Return the (index, sign) a word adds to, the same in every process and on every machine."""
    digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8, person=_PERSON).digest()
    value = int.from_bytes(digest, "little")
    return (value >> 1) % dims, (1.0 if value & 1 else -1.0)


class HashingEmbeddings(Embeddings):
    """Embeds a text as its hashed, signed word counts, L2-normalised.

    Words are runs of letters, digits and underscores, case-folded. Each word adds +1 or -1 to one of
    `dims` buckets chosen by blake2b (not Python's salted `hash()`), so a text gets the same vector in every
    process. Texts that share words score higher than texts that do not; there is no notion of meaning
    beyond that. A text with no words embeds as the zero vector.

    Args:
        dims: Length of every vector.
    """

    def __init__(self, dims: int = 256) -> None:
        if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
            raise ValueError(f"HashingEmbeddings needs dims >= 1, got {dims!r}")
        self.dims = dims

    def __repr__(self) -> str:
        return f"HashingEmbeddings(dims={self.dims})"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed each text; returns one vector per text, in order."""
        return [self._embed(text) for text in check_texts("HashingEmbeddings", texts)]

    def embed_query(self, text: str) -> list[float]:
        """Embed one search query."""
        return self.embed_documents([text])[0]

    def _embed(self, text: str) -> list[float]:
        vector = [0.0] * self.dims
        for word in _WORD.findall(text.casefold()):
            index, sign = _bucket(word, self.dims)
            vector[index] += sign
        norm = math.sqrt(sum(x * x for x in vector))
        if norm == 0.0:
            return vector
        return [x / norm for x in vector]

"""The embeddings interface every graphrt embedder implements, and its error class."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import anyio.to_thread

from graphrt.errors import GraphRtError

__all__ = ("Embeddings", "EmbeddingsError", "check_texts")


class EmbeddingsError(GraphRtError):
    """An embedding service failed or answered with something that is not embeddings."""


class Embeddings(ABC):
    """Turns texts into vectors; the same four methods as LangChain's `Embeddings`.

    Subclasses implement `embed_documents` and `embed_query`. The async twins run the sync methods in a
    worker thread unless a subclass has a native async path.
    """

    @abstractmethod
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed each text; returns one vector per text, in order."""

    @abstractmethod
    def embed_query(self, text: str) -> list[float]:
        """Embed one search query."""

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed each text without blocking the event loop."""
        return await anyio.to_thread.run_sync(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """Embed one search query without blocking the event loop."""
        return await anyio.to_thread.run_sync(self.embed_query, text)


def check_texts(owner: str, texts: Sequence[str]) -> list[str]:
    """Return `texts` as a list, or raise TypeError if it is a bare string or holds a non-string."""
    # A bare string is a sequence of one-character strings: embedding it "works" and silently gives
    # one vector per character, so it is refused outright.
    if isinstance(texts, str):
        raise TypeError(f"{owner}.embed_documents() takes a list of strings, not a str; wrap it: [text]")
    out = list(texts)
    for index, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(f"{owner}.embed_documents() takes a list of strings; item {index} is {type(text).__name__}")
    return out

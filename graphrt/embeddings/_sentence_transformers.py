"""An adapter for sentence-transformers models, imported only when one is made."""

from __future__ import annotations

import importlib
import os
from typing import Any

import numpy as np

from graphrt.embeddings._base import Embeddings, check_texts

__all__ = ("SentenceTransformerEmbeddings",)

_MISSING = "SentenceTransformerEmbeddings needs sentence-transformers: pip install sentence-transformers"


class SentenceTransformerEmbeddings(Embeddings):
    """Embeds texts with a sentence-transformers model (a name on its model hub, or a local folder).

    Args:
        model_name_or_path: What `sentence_transformers.SentenceTransformer` accepts.
        device: Torch device ("cpu", "cuda", ...); the library picks one when None.
        normalize: Scale every vector to unit length, so dot product equals cosine similarity.
        batch_size: Texts per forward pass.
        **model_kwargs: Passed on to `SentenceTransformer(...)`.

    Raises:
        ImportError: sentence-transformers is not installed.
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str],
        *,
        device: str | None = None,
        normalize: bool = True,
        batch_size: int = 32,
        **model_kwargs: Any,
    ) -> None:
        try:
            module = importlib.import_module("sentence_transformers")
        except ImportError as exc:
            raise ImportError(_MISSING) from exc
        self.model_name_or_path = str(model_name_or_path)
        self.normalize = normalize
        self.batch_size = batch_size
        self._model: Any = module.SentenceTransformer(self.model_name_or_path, device=device, **model_kwargs)

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbeddings({self.model_name_or_path!r})"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed each text; returns one vector per text, in order."""
        texts = check_texts("SentenceTransformerEmbeddings", texts)
        if not texts:
            return []
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=self.normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        result: list[list[float]] = np.asarray(vectors, dtype=np.float32).tolist()
        return result

    def embed_query(self, text: str) -> list[float]:
        """Embed one search query."""
        return self.embed_documents([text])[0]

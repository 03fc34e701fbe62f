"""`init_embeddings("provider:model")`: an embedder named by a string, as the store's `index` accepts."""

from __future__ import annotations

from typing import Any

from graphrt.embeddings._base import Embeddings

_PROVIDERS = ("openai", "sentence-transformers", "static", "hashing")


def init_embeddings(spec: str, **kwargs: Any) -> Embeddings:
    """The embedder `spec` names: `"openai:<model>"`, `"sentence-transformers:<model>"`, `"static"` or
    `"hashing"` (optionally `"hashing:<dims>"`). Extra keyword arguments go to the embedder.

    Raises:
        ValueError: An unknown provider, with the ones that exist.
    """
    provider, _, model = spec.partition(":")
    if provider == "openai" and model:
        from graphrt.embeddings._openai import OpenAIEmbeddings

        return OpenAIEmbeddings(model, **kwargs)
    if provider == "sentence-transformers" and model:
        from graphrt.embeddings._sentence_transformers import SentenceTransformerEmbeddings

        return SentenceTransformerEmbeddings(model, **kwargs)
    if provider == "static":
        from graphrt.embeddings._static import StaticEmbeddings

        return StaticEmbeddings(**kwargs)
    if provider == "hashing":
        from graphrt.embeddings._hashing import HashingEmbeddings

        return HashingEmbeddings(int(model), **kwargs) if model else HashingEmbeddings(**kwargs)
    raise ValueError(
        f"Unknown embeddings {spec!r}: use one of 'openai:<model>', 'sentence-transformers:<model>', "
        "'static' or 'hashing', or pass an embeddings object or function."
    )

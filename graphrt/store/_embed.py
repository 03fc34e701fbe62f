"""Adapt whatever the user gave as `index["embed"]` to one embedder the stores call.

Accepted: an object with LangChain's `Embeddings` methods (`embed_documents`, `embed_query`, and
optionally `aembed_documents`/`aembed_query`), a sync function `list[str] -> list[list[float]]`, an
async function of the same shape, or a `"provider:model"` string resolved by `graphrt.embeddings`.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import numpy as np
import numpy.typing as npt

from graphrt.embeddings._base import Embeddings

__all__ = (
    "AEmbeddingsFunc",
    "Embedder",
    "Embeddings",
    "EmbeddingsFunc",
    "ensure_embeddings",
)

EmbeddingsFunc = Callable[[Sequence[str]], list[list[float]]]
"""A sync function turning texts into one vector each."""

AEmbeddingsFunc = Callable[[Sequence[str]], Awaitable[list[list[float]]]]
"""An async function turning texts into one vector each."""

Matrix = npt.NDArray[np.float32]


def _is_async_callable(func: Any) -> bool:
    call = type(func).__call__ if callable(func) else None
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(call)


class _FunctionEmbeddings(Embeddings):
    """An `Embeddings` made from one sync or async function over a list of texts."""

    def __init__(self, func: EmbeddingsFunc | AEmbeddingsFunc) -> None:
        self._func = func
        self._is_async = _is_async_callable(func)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self._is_async:
            raise ValueError(
                "The store's embed function is async, so it can only be used from async code: "
                "call the store's async methods (aput, asearch, ...) or pass a sync function too."
            )
        result: list[list[float]] = self._func(texts)  # type: ignore[assignment]
        return result

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        if self._is_async:
            result: list[list[float]] = await self._func(texts)  # type: ignore[misc]
            return result
        return await super().aembed_documents(texts)

    async def aembed_query(self, text: str) -> list[float]:
        return (await self.aembed_documents([text]))[0]


def _from_provider(spec: str) -> Any:
    """Resolve a "provider:model" string with `graphrt.embeddings.init_embeddings`."""
    from graphrt.embeddings import init_embeddings

    return init_embeddings(spec)


def ensure_embeddings(embed: Any) -> Any:
    """Return an object with the `Embeddings` methods for an object, a sync/async function or a string."""
    if embed is None:
        raise ValueError("embed must be provided")
    if isinstance(embed, str):
        return _from_provider(embed)
    if hasattr(embed, "embed_documents") and hasattr(embed, "embed_query"):
        return embed
    if callable(embed):
        return _FunctionEmbeddings(embed)
    raise TypeError(
        f"index['embed'] must be an embeddings object, a function list[str] -> list[list[float]] "
        f"(sync or async) or a 'provider:model' string; got {type(embed).__name__}."
    )


@dataclass(frozen=True, slots=True)
class Embedder:
    """The store's view of an embeddings object: texts in, a float32 matrix of checked width out."""

    embeddings: Any
    """The user's object, or a wrapper around the user's function."""
    dims: int
    """Width every vector must have."""

    def documents(self, texts: list[str]) -> Matrix:
        """Embed documents for indexing."""
        return self._to_matrix(self.embeddings.embed_documents(texts), len(texts))

    def document_rows(self, texts: list[str]) -> list[Any]:
        """Embed documents for indexing; see `checked_rows`."""
        return self.checked_rows(self.embeddings.embed_documents(texts), len(texts))

    async def adocument_rows(self, texts: list[str]) -> list[Any]:
        """Embed documents for indexing, from async code; see `checked_rows`."""
        method = getattr(self.embeddings, "aembed_documents", None)
        if method is None:
            rows = await anyio.to_thread.run_sync(self.embeddings.embed_documents, texts)
        else:
            rows = await method(texts)
        return self.checked_rows(rows, len(texts))

    def checked_rows(self, rows: Any, expected: int) -> list[Any]:
        """The embedder's rows, checked: one per text, each `dims` numbers (else the `_to_matrix` errors).

        Plain lists of floats are returned as they are, so a caller that only keeps them (the in-memory
        store) never pays for converting each put's vector on its own; anything else is converted now.
        """
        dims = self.dims
        if type(rows) is list and len(rows) == expected and all(_plain_row(row, dims) for row in rows):
            return rows
        return list(self._to_matrix(rows, expected))

    def queries(self, queries: list[str]) -> Matrix:
        """Embed search queries (with `embed_query`, which some models treat differently)."""
        return self._to_matrix([self.embeddings.embed_query(q) for q in queries], len(queries))

    async def adocuments(self, texts: list[str]) -> Matrix:
        """Embed documents for indexing, from async code."""
        method = getattr(self.embeddings, "aembed_documents", None)
        if method is None:
            rows = await anyio.to_thread.run_sync(self.embeddings.embed_documents, texts)
        else:
            rows = await method(texts)
        return self._to_matrix(rows, len(texts))

    async def aqueries(self, queries: list[str]) -> Matrix:
        """Embed search queries, from async code."""
        method = getattr(self.embeddings, "aembed_query", None)
        rows = []
        for q in queries:
            if method is None:
                rows.append(await anyio.to_thread.run_sync(self.embeddings.embed_query, q))
            else:
                rows.append(await method(q))
        return self._to_matrix(rows, len(queries))

    def _to_matrix(self, rows: Any, expected: int) -> Matrix:
        if expected == 0:
            return np.zeros((0, self.dims), dtype=np.float32)
        try:
            matrix = np.asarray(rows, dtype=np.float32)
        except (TypeError, ValueError):
            matrix = np.zeros(0, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != expected:
            raise ValueError(
                f"The embedder returned {_describe(rows)} for {expected} text(s); expected one vector per text."
            )
        if matrix.shape[1] != self.dims:
            raise ValueError(
                f"The embedder returned vectors of {matrix.shape[1]} dimensions, but the store's index "
                f"was configured with dims={self.dims}. Set index['dims'] to the model's width."
            )
        return matrix


def _plain_row(row: Any, dims: int) -> bool:
    """Whether `row` is a list of `dims` real numbers (its sum is a cheap C-speed type check)."""
    if type(row) is not list or len(row) != dims:
        return False
    try:
        return type(sum(row)) in (float, int)
    except TypeError:
        return False


def _describe(rows: Any) -> str:
    try:
        return f"{len(rows)} vector(s)"
    except TypeError:
        return f"a {type(rows).__name__}"

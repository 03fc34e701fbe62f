"""A client for OpenAI-compatible `/embeddings` endpoints, using only the standard library."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from graphrt.embeddings._base import Embeddings, EmbeddingsError, check_texts

__all__ = ("OpenAIEmbeddings",)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_MAX_DETAIL = 300  # characters of a server's error text worth showing


class OpenAIEmbeddings(Embeddings):
    """Embeds texts by POSTing them to an OpenAI-compatible `{base_url}/embeddings` endpoint.

    Works with OpenAI and with servers that speak its API (vLLM, Ollama, LM Studio, llama.cpp, ...).
    The API key is sent as a bearer token and never appears in `repr()` or in error messages.

    Args:
        model: The model name the endpoint expects, e.g. "text-embedding-3-small".
        base_url: The API root; defaults to `$OPENAI_BASE_URL`, then OpenAI's.
        api_key: Defaults to `$OPENAI_API_KEY`; when neither is set no Authorization header is sent
            (local servers often need none).
        dims: Ask the model for vectors of this length (the API's `dimensions`); the model's own when None.
        timeout: Seconds to wait for each request.
        batch_size: Texts per request.

    Raises:
        EmbeddingsError: (from the embed methods) the endpoint could not be reached, refused the request, or
            answered with something other than one vector per text.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        dims: int | None = None,
        timeout: float = 60.0,
        batch_size: int = 512,
    ) -> None:
        if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int) or dims < 1):
            raise ValueError(f"OpenAIEmbeddings needs dims >= 1 or None, got {dims!r}")
        if batch_size < 1:
            raise ValueError(f"OpenAIEmbeddings needs batch_size >= 1, got {batch_size!r}")
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.dims = dims
        self.timeout = timeout
        self.batch_size = batch_size
        self._api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")

    def __repr__(self) -> str:
        return f"OpenAIEmbeddings({self.model!r}, base_url={_redact_url(self.base_url)!r}, dims={self.dims!r})"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed each text, `batch_size` per request; returns one vector per text, in order."""
        texts = check_texts("OpenAIEmbeddings", texts)
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            vectors.extend(self._request(texts[start : start + self.batch_size]))
        return vectors

    def embed_query(self, text: str) -> list[float]:
        """Embed one search query."""
        return self.embed_documents([text])[0]

    def _request(self, batch: list[str]) -> list[list[float]]:
        url = f"{self.base_url}/embeddings"
        body: dict[str, Any] = {"model": self.model, "input": batch, "encoding_format": "float"}
        if self.dims is not None:
            body["dimensions"] = self.dims
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
        where = _redact_url(url)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = self._scrub(_error_detail(exc))
            raise EmbeddingsError(f"Embedding request to {where} failed with HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise EmbeddingsError(f"Could not reach the embeddings endpoint {where}: {reason}") from None
        return self._parse(raw, len(batch), where)

    def _parse(self, raw: bytes, expected: int, where: str) -> list[list[float]]:
        try:
            payload = json.loads(raw)
            items = sorted(payload["data"], key=lambda item: item["index"])
            vectors = [[float(x) for x in item["embedding"]] for item in items]
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingsError(
                f"Embedding response from {where} is not an OpenAI embeddings response "
                f"(expected {{'data': [{{'index': ..., 'embedding': [...]}}]}}): {type(exc).__name__}"
            ) from None
        if len(vectors) != expected:
            raise EmbeddingsError(f"Embedding response from {where} has {len(vectors)} vectors for {expected} texts")
        if self.dims is not None and any(len(v) != self.dims for v in vectors):
            lengths = sorted({len(v) for v in vectors})
            raise EmbeddingsError(
                f"Embedding response from {where} has vectors of length {lengths}, but dims={self.dims} was asked"
            )
        return vectors

    def _scrub(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return text


def _error_detail(exc: urllib.error.HTTPError) -> str:
    """The server's own error message if it sent OpenAI's error shape, else its body or reason, shortened."""
    try:
        raw = exc.read().decode("utf-8", "replace")
    except OSError:
        raw = ""
    finally:
        exc.close()
    detail = raw.strip()
    try:
        error = json.loads(raw)["error"]
        detail = str(error["message"] if isinstance(error, dict) else error)
    except (ValueError, KeyError, TypeError):
        pass
    if not detail:
        detail = str(exc.reason)
    return detail if len(detail) <= _MAX_DETAIL else detail[:_MAX_DETAIL] + "..."


def _redact_url(url: str) -> str:
    """`url` without any user:password part, for messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=host))

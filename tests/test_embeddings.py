"""Tests for graphrt.embeddings: hashing, the packaged static model, and the two service adapters."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import math
import os
import re
import socket
import subprocess
import sys
import threading
import tomllib
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphrt.embeddings as embeddings_module
from graphrt.embeddings import (
    Embeddings,
    EmbeddingsError,
    HashingEmbeddings,
    OpenAIEmbeddings,
    SentenceTransformerEmbeddings,
    StaticEmbeddings,
)

REPO = Path(__file__).resolve().parent.parent
HAS_TOKENIZERS = importlib.util.find_spec("tokenizers") is not None
# Under CI the static model must be tested, so a missing `tokenizers` fails there instead of skipping.
needs_tokenizers = pytest.mark.skipif(
    not HAS_TOKENIZERS and os.environ.get("CI") != "true",
    reason="tokenizers is not installed: pip install 'graphrt[embeddings]'",
)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def embed_documents(emb: Embeddings, texts: list[str], mode: str) -> list[list[float]]:
    if mode == "async":
        return anyio.run(emb.aembed_documents, texts)
    return emb.embed_documents(texts)


def embed_query(emb: Embeddings, text: str, mode: str) -> list[float]:
    if mode == "async":
        return anyio.run(emb.aembed_query, text)
    return emb.embed_query(text)


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_public_surface() -> None:
    assert isinstance(embeddings_module.__all__, tuple)
    assert set(embeddings_module.__all__) == {
        "init_embeddings",
        "Embeddings",
        "EmbeddingsError",
        "HashingEmbeddings",
        "OpenAIEmbeddings",
        "SentenceTransformerEmbeddings",
        "StaticEmbeddings",
    }
    for name in embeddings_module.__all__:
        assert hasattr(embeddings_module, name)


# --- HashingEmbeddings ---------------------------------------------------------------------------------


def test_hashing_vector_is_pinned(mode: str) -> None:
    # "hello" (twice, case-folded) and "world" land in fixed buckets: a change here breaks stored vectors.
    vector = embed_query(HashingEmbeddings(dims=8), "Hello hello, world!", mode)
    assert vector == [0.0, 0.0, 2 / math.sqrt(5), 0.0, 1 / math.sqrt(5), 0.0, 0.0, 0.0]


def test_hashing_is_stable_across_processes() -> None:
    code = "from graphrt.embeddings import HashingEmbeddings; print(HashingEmbeddings(16).embed_query('a b c'))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert outputs == {f"{HashingEmbeddings(16).embed_query('a b c')}\n"}


def test_hashing_scores_similar_texts_higher(mode: str) -> None:
    cat, mat, stocks = embed_documents(
        HashingEmbeddings(), ["the cat sat on the mat", "a cat on a mat", "stock market prices fell"], mode
    )
    assert cosine(cat, mat) > cosine(cat, stocks)


def test_hashing_text_without_words_is_zero(mode: str) -> None:
    assert embed_documents(HashingEmbeddings(dims=4), ["", "?! ..."], mode) == [[0.0] * 4, [0.0] * 4]


@settings(max_examples=50, deadline=None)
@given(texts=st.lists(st.text(max_size=40), max_size=5), dims=st.integers(1, 64))
def test_hashing_laws(texts: list[str], dims: int) -> None:
    emb = HashingEmbeddings(dims=dims)
    vectors = emb.embed_documents(texts)
    assert vectors == HashingEmbeddings(dims=dims).embed_documents(texts)
    assert vectors == [emb.embed_query(text) for text in texts]
    for vector in vectors:
        assert len(vector) == dims
        norm = math.fsum(x * x for x in vector)
        assert norm == 0.0 or math.isclose(norm, 1.0)


@pytest.mark.parametrize("dims", [0, -3, 2.5, True])
def test_hashing_rejects_bad_dims(dims: Any) -> None:
    with pytest.raises(ValueError, match=rf"^HashingEmbeddings needs dims >= 1, got {dims!r}$"):
        HashingEmbeddings(dims=dims)


def test_embed_documents_refuses_a_bare_string() -> None:
    message = r"^HashingEmbeddings.embed_documents\(\) takes a list of strings, not a str; wrap it: \[text\]$"
    with pytest.raises(TypeError, match=message):
        HashingEmbeddings().embed_documents("oops")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"takes a list of strings; item 1 is int$"):
        HashingEmbeddings().embed_documents(["fine", 3])  # type: ignore[list-item]


# --- StaticEmbeddings ----------------------------------------------------------------------------------

MEMORIES = [
    "User name is Bob",
    "I like pizza",
    "The user lives in Berlin",
    "User has two cats named Tom and Jerry",
    "The server runs on Ubuntu 22.04",
    "The meeting was moved to Friday",
    "My car is a blue Toyota",
    "The weather was rainy all weekend",
    "The user speaks French and Spanish",
    "The project deadline is the end of June",
]
QUERIES = [
    ("what is the user's name?", "User name is Bob"),
    ("food preferences", "I like pizza"),
    ("where does the user live?", "The user lives in Berlin"),
    ("does the user have pets?", "User has two cats named Tom and Jerry"),
    ("when is the meeting", "The meeting was moved to Friday"),
    ("what vehicle does the user drive", "My car is a blue Toyota"),
    ("languages", "The user speaks French and Spanish"),
    ("which operating system", "The server runs on Ubuntu 22.04"),
]


@pytest.fixture(scope="module")
def static() -> StaticEmbeddings:
    return StaticEmbeddings()


@needs_tokenizers
@pytest.mark.parametrize(("query", "expected"), QUERIES)
def test_static_ranks_the_related_memory_first(static: StaticEmbeddings, query: str, expected: str) -> None:
    memories = static.embed_documents(MEMORIES)
    scores = {text: cosine(vector, static.embed_query(query)) for text, vector in zip(MEMORIES, memories, strict=True)}
    assert max(scores, key=scores.__getitem__) == expected


@needs_tokenizers
def test_static_vectors_are_unit_length_and_batch_independent(static: StaticEmbeddings, mode: str) -> None:
    texts = ["I like pizza", "", "User name is Bob", "\u2603\u2603", "a"]
    vectors = embed_documents(static, texts, mode)
    assert static.dims == 256
    assert [len(v) for v in vectors] == [256] * 5
    # Empty text and unknown symbols have no known pieces: zero vectors that shift none of their neighbours.
    assert vectors[1] == [0.0] * 256
    assert vectors[3] == [0.0] * 256
    for text, vector in zip(texts, vectors, strict=True):
        assert np.allclose(vector, embed_query(static, text, mode), atol=1e-6)
        assert math.isclose(float(np.linalg.norm(vector)), 1.0, rel_tol=1e-5) or not any(vector)
    assert embed_documents(static, [], mode) == []


@needs_tokenizers
def test_static_long_lists_match_one_by_one(static: StaticEmbeddings) -> None:
    # Longer than one internal chunk, with empty texts on both sides of the chunk boundary.
    texts = [f"note {i} about cats" if i % 3 else "" for i in range(2100)]
    vectors = static.embed_documents(texts)
    for i in (0, 1, 2046, 2047, 2048, 2049, 2099):
        assert np.allclose(vectors[i], static.embed_query(texts[i]), atol=1e-6)


@needs_tokenizers
def test_static_default_model_is_shared(static: StaticEmbeddings) -> None:
    assert repr(static) == "StaticEmbeddings()"
    assert static.embed_query("hello") == StaticEmbeddings().embed_query("hello")


def write_tiny_model(folder: Path, vectors: np.ndarray, scales: np.ndarray | None = None) -> None:
    """A three-word model: [UNK]=0, cat=1, dog=2, fish=3, split on whitespace."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    tokenizer = Tokenizer(WordLevel({"[UNK]": 0, "cat": 1, "dog": 2, "fish": 3}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    folder.mkdir()
    tokenizer.save(str(folder / "tokenizer.json"))
    np.save(folder / "vectors.npy", vectors)
    if scales is not None:
        np.save(folder / "scales.npy", scales)


@needs_tokenizers
def test_static_loads_a_model_folder(tmp_path: Path) -> None:
    rows = np.array([[9, 9], [3, 0], [0, 4], [1, 1]], dtype=np.int8)
    write_tiny_model(tmp_path / "m", rows, scales=np.array([1.0, 1.0, 1.0, 2.0], dtype=np.float32))
    emb = StaticEmbeddings(tmp_path / "m")
    assert emb.dims == 2
    # cat + dog = (3, 4) -> (0.6, 0.8); the unknown word adds nothing; fish is scaled to (2, 2).
    assert np.allclose(
        emb.embed_documents(["cat dog", "cat zebra", "zebra", "fish"]),
        [
            [0.6, 0.8],
            [1.0, 0.0],
            [0.0, 0.0],
            [math.sqrt(0.5), math.sqrt(0.5)],
        ],
    )
    assert repr(emb) == f"StaticEmbeddings({str((tmp_path / 'm').resolve())!r})"


@needs_tokenizers
def test_static_rejects_a_folder_that_is_not_a_model(tmp_path: Path) -> None:
    folder = tmp_path.resolve()
    message = (
        f"StaticEmbeddings: {folder} is not a static model folder (missing tokenizer.json, vectors.npy); "
        "make one with scripts/distill_embedder.py --out FOLDER"
    )
    with pytest.raises(FileNotFoundError, match=f"^{re.escape(message)}$"):
        StaticEmbeddings(tmp_path)


@needs_tokenizers
def test_static_rejects_vectors_from_another_model(tmp_path: Path) -> None:
    write_tiny_model(tmp_path / "m", np.zeros((7, 2), dtype=np.float32))
    folder = (tmp_path / "m").resolve()
    message = (
        f"StaticEmbeddings: {folder}/vectors.npy has shape (7, 2), but the tokenizer has 4 tokens; "
        "the files come from different models"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        StaticEmbeddings(folder)


def test_static_without_tokenizers_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    message = r"^StaticEmbeddings needs tokenizers: pip install 'graphrt\[embeddings\]'$"
    with pytest.raises(ImportError, match=message):
        StaticEmbeddings()


def test_static_model_files_ship_with_the_package() -> None:
    folder = REPO / "graphrt" / "embeddings" / "_static_model"
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "LICENSE.txt",
        "README.txt",
        "config.json",
        "scales.npy",
        "tokenizer.json",
        "vectors.npy",
    ]
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["graphrt"]
    for name in names:
        relative = f"embeddings/_static_model/{name}"
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative
    licence = (folder / "LICENSE.txt").read_text()
    assert "sentence-transformers/all-MiniLM-L6-v2" in licence
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    assert sum(p.stat().st_size for p in folder.iterdir()) < 10 * 1024 * 1024


# --- SentenceTransformerEmbeddings ---------------------------------------------------------------------


class StandInSentenceTransformer:
    """Plays the part of sentence_transformers.SentenceTransformer: vectors from text lengths."""

    made: list[tuple[str, dict[str, Any]]] = []  # noqa: RUF012 - a record the test reads back
    calls: list[tuple[list[str], dict[str, Any]]] = []  # noqa: RUF012

    def __init__(self, name: str, **kwargs: Any) -> None:
        self.made.append((name, kwargs))

    def encode(self, texts: list[str], **kwargs: Any) -> np.ndarray:
        self.calls.append((texts, kwargs))
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)


@pytest.fixture
def stand_in_sentence_transformers(monkeypatch: pytest.MonkeyPatch) -> type[StandInSentenceTransformer]:
    module = types.ModuleType("sentence_transformers")
    module.SentenceTransformer = StandInSentenceTransformer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", module)
    StandInSentenceTransformer.made = []
    StandInSentenceTransformer.calls = []
    return StandInSentenceTransformer


def test_sentence_transformer_adapter(
    stand_in_sentence_transformers: type[StandInSentenceTransformer], mode: str
) -> None:
    emb = SentenceTransformerEmbeddings("some/model", device="cpu", batch_size=8, trust_remote_code=False)
    assert stand_in_sentence_transformers.made == [("some/model", {"device": "cpu", "trust_remote_code": False})]
    assert embed_documents(emb, ["ab", "abcd"], mode) == [[2.0, 1.0], [4.0, 1.0]]
    assert embed_query(emb, "abc", mode) == [3.0, 1.0]
    assert embed_documents(emb, [], mode) == []
    texts, kwargs = stand_in_sentence_transformers.calls[0]
    assert texts == ["ab", "abcd"]
    assert kwargs == {
        "batch_size": 8,
        "normalize_embeddings": True,
        "convert_to_numpy": True,
        "show_progress_bar": False,
    }
    assert len(stand_in_sentence_transformers.calls) == 2
    assert repr(emb) == "SentenceTransformerEmbeddings('some/model')"


def test_sentence_transformer_missing_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    message = r"^SentenceTransformerEmbeddings needs sentence-transformers: pip install sentence-transformers$"
    with pytest.raises(ImportError, match=message):
        SentenceTransformerEmbeddings("all-MiniLM-L6-v2")


# --- OpenAIEmbeddings ----------------------------------------------------------------------------------

SECRET = "sk-test-0123456789abcdef"


class FakeEmbeddingsServer(ThreadingHTTPServer):
    """An OpenAI-style /v1/embeddings endpoint on 127.0.0.1 that returns fixed vectors."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), EmbeddingsHandler)
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.reply: str = "ok"  # ok | unauthorized | not-json | short | plain-error | wrong-dims

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class EmbeddingsHandler(BaseHTTPRequestHandler):
    server: FakeEmbeddingsServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, dict(self.headers), body))
        reply = self.server.reply
        if reply == "unauthorized":
            message = f"Incorrect API key provided: {self.headers.get('Authorization', '')[7:]}."
            self._send(401, json.dumps({"error": {"message": message, "type": "invalid_request_error"}}))
        elif reply == "plain-error":
            self._send(503, "")
        elif reply == "not-json":
            self._send(200, "<html>hello</html>")
        else:
            texts = body["input"][:-1] if reply == "short" else body["input"]
            size = 3 if reply == "wrong-dims" else body.get("dimensions", 3)
            data = [
                {"object": "embedding", "index": i, "embedding": [float(len(t))] + [0.5] * (size - 1)}
                for i, t in enumerate(texts)
            ]
            data.reverse()  # the API may answer out of order; `index` says where each vector goes
            self._send(200, json.dumps({"object": "list", "data": data, "model": body["model"]}))

    def _send(self, status: int, text: str) -> None:
        payload = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def server() -> Iterator[FakeEmbeddingsServer]:
    srv = FakeEmbeddingsServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def test_openai_embeds_in_order_and_batches(server: FakeEmbeddingsServer, mode: str) -> None:
    emb = OpenAIEmbeddings("text-embedding-3-small", base_url=server.url, api_key=SECRET, batch_size=2)
    vectors = embed_documents(emb, ["a", "bb", "ccc", "dddd", "eeeee"], mode)
    assert vectors == [[float(n), 0.5, 0.5] for n in range(1, 6)]
    assert embed_query(emb, "hello", mode) == [5.0, 0.5, 0.5]
    assert [body["input"] for _, _, body in server.requests] == [
        ["a", "bb"],
        ["ccc", "dddd"],
        ["eeeee"],
        ["hello"],
    ]
    path, headers, body = server.requests[0]
    assert path == "/v1/embeddings"
    assert headers["Authorization"] == f"Bearer {SECRET}"
    assert headers["Content-Type"] == "application/json"
    assert body == {"model": "text-embedding-3-small", "input": ["a", "bb"], "encoding_format": "float"}
    assert embed_documents(emb, [], mode) == []
    assert len(server.requests) == 4


def test_openai_asks_for_dims(server: FakeEmbeddingsServer) -> None:
    emb = OpenAIEmbeddings("m", base_url=server.url + "/", dims=5)
    assert emb.embed_query("xy") == [2.0, 0.5, 0.5, 0.5, 0.5]
    assert server.requests[0][2]["dimensions"] == 5
    assert server.requests[0][0] == "/v1/embeddings"


def test_openai_reads_key_and_url_from_environment(
    server: FakeEmbeddingsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    OpenAIEmbeddings("m").embed_query("x")
    assert server.requests[0][1]["Authorization"] == f"Bearer {SECRET}"
    monkeypatch.delenv("OPENAI_API_KEY")
    OpenAIEmbeddings("m").embed_query("x")
    assert "Authorization" not in server.requests[1][1]


def test_openai_never_shows_the_key(server: FakeEmbeddingsServer, mode: str) -> None:
    server.reply = "unauthorized"
    emb = OpenAIEmbeddings("m", base_url=server.url, api_key=SECRET)
    message = f"Embedding request to {server.url}/embeddings failed with HTTP 401: Incorrect API key provided: ***."
    with pytest.raises(EmbeddingsError, match=f"^{re.escape(message)}$") as caught:
        embed_documents(emb, ["x"], mode)
    assert caught.value.__cause__ is None
    assert SECRET not in repr(emb)
    assert repr(emb) == f"OpenAIEmbeddings('m', base_url={server.url!r}, dims=None)"


def test_openai_error_without_a_body_uses_the_reason(server: FakeEmbeddingsServer) -> None:
    server.reply = "plain-error"
    message = f"Embedding request to {server.url}/embeddings failed with HTTP 503: Service Unavailable"
    with pytest.raises(EmbeddingsError, match=f"^{re.escape(message)}$"):
        OpenAIEmbeddings("m", base_url=server.url).embed_query("x")


def test_openai_rejects_answers_that_are_not_embeddings(server: FakeEmbeddingsServer) -> None:
    emb = OpenAIEmbeddings("m", base_url=server.url)
    where = f"{server.url}/embeddings"
    server.reply = "not-json"
    with pytest.raises(EmbeddingsError, match=f"^Embedding response from {re.escape(where)} is not an OpenAI"):
        emb.embed_query("x")
    server.reply = "short"
    with pytest.raises(
        EmbeddingsError, match=f"^Embedding response from {re.escape(where)} has 1 vectors for 2 texts$"
    ):
        emb.embed_documents(["a", "b"])


def test_openai_checks_the_dims_it_asked_for(server: FakeEmbeddingsServer) -> None:
    server.reply = "wrong-dims"
    with pytest.raises(EmbeddingsError, match=r"has vectors of length \[3\], but dims=4 was asked$"):
        OpenAIEmbeddings("m", base_url=server.url, dims=4).embed_query("x")


def test_openai_unreachable_endpoint() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://user:pw@127.0.0.1:{port}/v1"
    emb = OpenAIEmbeddings("m", base_url=url, api_key=SECRET)
    assert repr(emb) == f"OpenAIEmbeddings('m', base_url='http://127.0.0.1:{port}/v1', dims=None)"
    with pytest.raises(
        EmbeddingsError, match=rf"^Could not reach the embeddings endpoint http://127\.0\.0\.1:{port}/v1"
    ):
        emb.embed_query("x")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dims": 0}, "OpenAIEmbeddings needs dims >= 1 or None, got 0"),
        ({"batch_size": 0}, "OpenAIEmbeddings needs batch_size >= 1, got 0"),
    ],
)
def test_openai_rejects_bad_settings(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        OpenAIEmbeddings("m", **kwargs)


def test_init_embeddings_names_every_provider() -> None:
    from graphrt.embeddings import HashingEmbeddings, OpenAIEmbeddings, init_embeddings

    assert isinstance(init_embeddings("hashing"), HashingEmbeddings)
    assert len(init_embeddings("hashing:16").embed_query("hi")) == 16
    assert isinstance(init_embeddings("openai:text-embedding-3-small", api_key="k"), OpenAIEmbeddings)
    with pytest.raises(ValueError, match=r"^Unknown embeddings 'nope:x': use one of"):
        init_embeddings("nope:x")


def test_a_store_index_accepts_a_provider_string() -> None:
    from graphrt.store.memory import InMemoryStore

    store = InMemoryStore(index={"embed": "hashing:64", "dims": 64})
    store.put(("n",), "a", {"text": "the cat sat"})
    store.put(("n",), "b", {"text": "stock prices fell"})
    assert store.search(("n",), query="a cat")[0].key == "a"

"""Embedders for the long-term memory store's semantic search.

All share LangChain's `Embeddings` methods (`embed_documents`, `embed_query` and their async twins):

- `HashingEmbeddings`: deterministic hashed bag of words, no dependencies; for tests.
- `StaticEmbeddings`: a small semantic model shipped with graphrt, offline; needs `tokenizers`.
- `SentenceTransformerEmbeddings`: any sentence-transformers model; needs `sentence-transformers`.
- `OpenAIEmbeddings`: any OpenAI-compatible `/embeddings` endpoint, over the standard library.
"""

from graphrt.embeddings._base import Embeddings, EmbeddingsError
from graphrt.embeddings._hashing import HashingEmbeddings
from graphrt.embeddings._init import init_embeddings
from graphrt.embeddings._openai import OpenAIEmbeddings
from graphrt.embeddings._sentence_transformers import SentenceTransformerEmbeddings
from graphrt.embeddings._static import StaticEmbeddings

__all__ = (
    "Embeddings",
    "EmbeddingsError",
    "HashingEmbeddings",
    "OpenAIEmbeddings",
    "SentenceTransformerEmbeddings",
    "StaticEmbeddings",
    "init_embeddings",
)

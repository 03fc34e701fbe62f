"""The long-term memory store interface: items, operations and `BaseStore`.

A store keeps JSON documents (dicts) under a namespace tuple and a key. Backends implement
`batch`; every other method builds one operation and runs it through `batch` (or `abatch`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal, NamedTuple, TypedDict

import anyio.to_thread

from graphrt.store._embed import AEmbeddingsFunc, Embeddings, EmbeddingsFunc, ensure_embeddings
from graphrt.store._namespace import InvalidNamespaceError, check_key, check_labels, check_put_namespace
from graphrt.store._paths import get_text_at_path, tokenize_path

__all__ = (
    "AEmbeddingsFunc",
    "BaseStore",
    "Embeddings",
    "EmbeddingsFunc",
    "GetOp",
    "IndexConfig",
    "InvalidNamespaceError",
    "Item",
    "ListNamespacesOp",
    "MatchCondition",
    "NOT_PROVIDED",
    "NamespaceMatchType",
    "NamespacePath",
    "NotProvided",
    "Op",
    "PutOp",
    "Result",
    "SearchItem",
    "SearchOp",
    "TTLConfig",
    "ensure_embeddings",
    "get_text_at_path",
    "tokenize_path",
    "validate_op_namespace",
)


class NotProvided:
    """Type of `NOT_PROVIDED`, the default that means "use the store's configured value"."""

    __slots__ = ()

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_PROVIDED = NotProvided()


def _as_datetime(value: datetime | str) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


class Item:
    """A stored document with its namespace, key and timestamps."""

    __slots__ = ("created_at", "key", "namespace", "updated_at", "value")

    def __init__(
        self,
        *,
        value: dict[str, Any],
        key: str,
        namespace: tuple[str, ...],
        created_at: datetime,
        updated_at: datetime,
    ) -> None:
        self.value = value
        self.key = key
        self.namespace = tuple(namespace)
        # ISO strings are accepted so an item read back from JSON can be rebuilt.
        self.created_at = _as_datetime(created_at)
        self.updated_at = _as_datetime(updated_at)

    @classmethod
    def _trusted(
        cls, value: dict[str, Any], key: str, namespace: tuple[str, ...], created_at: datetime, updated_at: datetime
    ) -> Item:
        """An item from parts a store already holds in final form (a tuple, datetimes): no conversions."""
        item = cls.__new__(cls)
        item.value, item.key, item.namespace = value, key, namespace
        item.created_at, item.updated_at = created_at, updated_at
        return item

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Item):
            return False
        return (
            self.value == other.value
            and self.key == other.key
            and self.namespace == other.namespace
            and self.created_at == other.created_at
            and self.updated_at == other.updated_at
        )

    def __hash__(self) -> int:
        return hash((self.namespace, self.key))

    def dict(self) -> dict[str, Any]:
        """JSON-ready form: namespace as a list, timestamps as ISO strings."""
        return {
            "namespace": list(self.namespace),
            "key": self.key,
            "value": self.value,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }

    def __repr__(self) -> str:
        return f"Item({', '.join(f'{k}={v!r}' for k, v in self.dict().items())})"


class SearchItem(Item):
    """An item returned by `search`, with its similarity `score` (`None` without a query)."""

    __slots__ = ("score",)

    def __init__(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: dict[str, Any],
        created_at: datetime,
        updated_at: datetime,
        score: float | None = None,
    ) -> None:
        super().__init__(value=value, key=key, namespace=namespace, created_at=created_at, updated_at=updated_at)
        self.score = score

    @classmethod
    def _trusted(  # type: ignore[override]
        cls,
        namespace: tuple[str, ...],
        key: str,
        value: dict[str, Any],
        created_at: datetime,
        updated_at: datetime,
        score: float | None = None,
    ) -> SearchItem:
        """A search hit from parts a store already holds in final form (a tuple, datetimes): no conversions."""
        item = cls.__new__(cls)
        item.value, item.key, item.namespace = value, key, namespace
        item.created_at, item.updated_at, item.score = created_at, updated_at, score
        return item

    def dict(self) -> dict[str, Any]:
        """JSON-ready form, with `score`."""
        result = super().dict()
        result["score"] = self.score
        return result


class GetOp(NamedTuple):
    """Read one item by namespace and key."""

    namespace: tuple[str, ...]
    key: str
    refresh_ttl: bool = True


class SearchOp(NamedTuple):
    """Find items under a namespace prefix, by filter and (with an index) by similarity to `query`."""

    namespace_prefix: tuple[str, ...]
    filter: dict[str, Any] | None = None
    limit: int = 10
    offset: int = 0
    query: str | None = None
    refresh_ttl: bool = True


NamespacePath = tuple[str | Literal["*"], ...]
"""A namespace pattern; `"*"` matches any one label."""

NamespaceMatchType = Literal["prefix", "suffix"]


class MatchCondition(NamedTuple):
    """Namespaces that start (`"prefix"`) or end (`"suffix"`) with `path`."""

    match_type: NamespaceMatchType
    path: NamespacePath


class ListNamespacesOp(NamedTuple):
    """List namespaces matching all conditions, truncated to `max_depth`, sorted, paginated."""

    match_conditions: tuple[MatchCondition, ...] | None = None
    max_depth: int | None = None
    limit: int = 100
    offset: int = 0


class PutOp(NamedTuple):
    """Write an item (or delete it, when `value` is `None`)."""

    namespace: tuple[str, ...]
    key: str
    value: dict[str, Any] | None
    index: Literal[False] | list[str] | None = None  # type: ignore[assignment]
    """`None`: the store's configured fields; `False`: not embedded; a list: these field paths."""
    ttl: float | None = None
    """Minutes until the item expires after its last write (or read, when reads refresh)."""


Op = GetOp | SearchOp | PutOp | ListNamespacesOp
Result = Item | list[Item] | list[SearchItem] | list[tuple[str, ...]] | None


class TTLConfig(TypedDict, total=False):
    """How items expire."""

    refresh_on_read: bool
    """Whether get/search push an item's expiry back by its TTL (default `True`)."""
    default_ttl: float | None
    """Minutes an item lives when `put` gives no `ttl` (default: forever)."""
    sweep_interval_minutes: int | None
    """How often `start_ttl_sweeper` deletes expired items."""


class IndexConfig(TypedDict, total=False):
    """Vector-search configuration."""

    dims: int
    """Width of the vectors the embedder returns."""
    embed: Embeddings | EmbeddingsFunc | AEmbeddingsFunc | str
    """Embeddings object, sync or async function `list[str] -> list[list[float]]`, or "provider:model"."""
    fields: list[str] | None
    """Field paths to embed ("$" for the whole value, the default; "a.b"; "arr[*].x")."""


def validate_op_namespace(op: Op) -> None:
    """Check the namespace labels an op carries (ops given straight to `batch` skip the methods' checks)."""
    if isinstance(op, GetOp | PutOp):
        check_labels(op.namespace)
    elif isinstance(op, SearchOp):
        check_labels(op.namespace_prefix)
    elif isinstance(op, ListNamespacesOp):
        for condition in op.match_conditions or ():
            check_labels(condition.path)


def _refresh(ttl_config: TTLConfig | None, refresh_ttl: bool | None) -> bool:
    if refresh_ttl is not None:
        return refresh_ttl
    return True if ttl_config is None else ttl_config.get("refresh_on_read", True)


def _ttl(ttl_config: TTLConfig | None, ttl: float | NotProvided | None) -> float | None:
    if isinstance(ttl, NotProvided):
        return ttl_config.get("default_ttl") if ttl_config else None
    return ttl


def _list_op(
    prefix: NamespacePath | None, suffix: NamespacePath | None, max_depth: int | None, limit: int, offset: int
) -> ListNamespacesOp:
    check_labels(prefix or ())
    check_labels(suffix or ())
    conditions: list[MatchCondition] = []
    if prefix:
        conditions.append(MatchCondition(match_type="prefix", path=tuple(prefix)))
    if suffix:
        conditions.append(MatchCondition(match_type="suffix", path=tuple(suffix)))
    return ListNamespacesOp(tuple(conditions), max_depth, limit, offset)


class BaseStore(ABC):
    """A key-value store of JSON documents under hierarchical namespaces, searchable by filter and meaning.

    Backends implement `batch`; `abatch` runs it in a worker thread unless a backend overrides it.
    """

    supports_ttl: bool = False
    ttl_config: TTLConfig | None = None

    __slots__ = ("__weakref__",)

    @abstractmethod
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run operations in order, each seeing the effects of those before it; one result per op."""

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run operations like `batch`, without blocking the event loop."""
        return await anyio.to_thread.run_sync(self.batch, list(ops))

    # Each public method builds one op; the sync and async twins share these builders.
    def _get_op(self, namespace: tuple[str, ...], key: str, refresh_ttl: bool | None) -> GetOp:
        check_labels(namespace)
        return GetOp(tuple(namespace), check_key(str(key)), _refresh(self.ttl_config, refresh_ttl))

    def _search_op(
        self,
        prefix: tuple[str, ...],
        query: str | None,
        filter: dict[str, Any] | None,
        limit: int,
        offset: int,
        refresh_ttl: bool | None,
    ) -> SearchOp:
        check_labels(prefix)
        return SearchOp(tuple(prefix), filter, limit, offset, query, _refresh(self.ttl_config, refresh_ttl))

    def _put_op(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        index: Literal[False] | list[str] | None,
        ttl: float | NotProvided | None,
    ) -> PutOp:
        check_put_namespace(namespace)
        if ttl not in (NOT_PROVIDED, None) and not self.supports_ttl:
            raise NotImplementedError(
                f"TTL is not supported by {type(self).__name__}. "
                "Use a store implementation that supports TTL or set ttl=None."
            )
        if type(value) is not dict and not isinstance(value, Mapping):
            raise TypeError(
                f"Store values must be dicts (JSON objects), got {type(value).__name__}: {value!r:.80}. "
                "Wrap other values in a dict, e.g. {'value': ...}; to delete an item use delete()."
            )
        return PutOp(tuple(namespace), str(key), dict(value), index, _ttl(self.ttl_config, ttl))

    def _delete_op(self, namespace: tuple[str, ...], key: str) -> PutOp:
        check_labels(namespace)
        return PutOp(tuple(namespace), str(key), None, ttl=None)

    def get(self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool | None = None) -> Item | None:
        """Return the item at `namespace`/`key`, or `None`.

        Raises:
            InvalidNamespaceError: a label is empty, not a string, or contains a period.
        """
        result: Item | None = self.batch([self._get_op(namespace, key, refresh_ttl)])[0]  # type: ignore[assignment]
        return result

    def search(
        self,
        namespace_prefix: tuple[str, ...],
        /,
        *,
        query: str | None = None,
        filter: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        refresh_ttl: bool | None = None,
    ) -> list[SearchItem]:
        """Return items under `namespace_prefix` that pass `filter`, most similar to `query` first.

        Without a query (or without an index), the most recently written items come first.
        """
        op = self._search_op(namespace_prefix, query, filter, limit, offset, refresh_ttl)
        result: list[SearchItem] = self.batch([op])[0]  # type: ignore[assignment]
        return result

    def put(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        index: Literal[False] | list[str] | None = None,
        *,
        ttl: float | NotProvided | None = NOT_PROVIDED,
    ) -> None:
        """Store `value` (a dict) at `namespace`/`key`, replacing what was there.

        Args:
            index: `None` embeds the store's configured fields, `False` nothing, a list these paths.
            ttl: minutes until the item expires; `None` never; omitted: the store's `default_ttl`.

        Raises:
            InvalidNamespaceError: the namespace is empty, rooted at "langgraph", or has a bad label.
            TypeError: `value` is not a dict.
        """
        self.batch([self._put_op(namespace, key, value, index, ttl)])

    def delete(self, namespace: tuple[str, ...], key: str) -> None:
        """Delete the item at `namespace`/`key` (nothing happens if there is none)."""
        self.batch([self._delete_op(namespace, key)])

    def list_namespaces(
        self,
        *,
        prefix: NamespacePath | None = None,
        suffix: NamespacePath | None = None,
        max_depth: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[tuple[str, ...]]:
        """List namespaces holding items, sorted; `"*"` in `prefix`/`suffix` matches any one label.

        `max_depth` truncates longer namespaces to their first `max_depth` labels (deduplicated).
        """
        op = _list_op(prefix, suffix, max_depth, limit, offset)
        result: list[tuple[str, ...]] = self.batch([op])[0]  # type: ignore[assignment]
        return result

    async def aget(self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool | None = None) -> Item | None:
        """Async `get`."""
        result: Item | None = (await self.abatch([self._get_op(namespace, key, refresh_ttl)]))[0]  # type: ignore[assignment]
        return result

    async def asearch(
        self,
        namespace_prefix: tuple[str, ...],
        /,
        *,
        query: str | None = None,
        filter: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        refresh_ttl: bool | None = None,
    ) -> list[SearchItem]:
        """Async `search`."""
        op = self._search_op(namespace_prefix, query, filter, limit, offset, refresh_ttl)
        result: list[SearchItem] = (await self.abatch([op]))[0]  # type: ignore[assignment]
        return result

    async def aput(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        index: Literal[False] | list[str] | None = None,
        *,
        ttl: float | NotProvided | None = NOT_PROVIDED,
    ) -> None:
        """Async `put`."""
        await self.abatch([self._put_op(namespace, key, value, index, ttl)])

    async def adelete(self, namespace: tuple[str, ...], key: str) -> None:
        """Async `delete`."""
        await self.abatch([self._delete_op(namespace, key)])

    async def alist_namespaces(
        self,
        *,
        prefix: NamespacePath | None = None,
        suffix: NamespacePath | None = None,
        max_depth: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[tuple[str, ...]]:
        """Async `list_namespaces`."""
        op = _list_op(prefix, suffix, max_depth, limit, offset)
        result: list[tuple[str, ...]] = (await self.abatch([op]))[0]  # type: ignore[assignment]
        return result

"""Long-term memory stores: JSON documents under namespaces, searchable by filter and by meaning."""

from graphrt.store.base import BaseStore, Item, SearchItem

__all__ = ("BaseStore", "Item", "SearchItem")

"""Caches for node and task results: `graphrt.cache.memory.InMemoryCache`, `graphrt.cache.sqlite.SqliteCache`."""

__all__ = ()

"""graphrt: a fast graph execution runtime with built-in persistence, import-compatible with LangGraph."""

__all__ = ()

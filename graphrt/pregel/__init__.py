"""The Pregel runtime behind every compiled graph."""

from graphrt.pregel.main import Pregel

__all__ = ("Pregel",)

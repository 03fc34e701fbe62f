"""The Pregel runtime behind every compiled graph, and its low-level API (`NodeBuilder`)."""

from graphrt.pregel._builder import NodeBuilder
from graphrt.pregel._write import ChannelWriteEntry
from graphrt.pregel.main import Pregel

__all__ = ("ChannelWriteEntry", "NodeBuilder", "Pregel")

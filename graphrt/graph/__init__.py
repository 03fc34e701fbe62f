"""The Graph API: `StateGraph`, `START`/`END`, `MessagesState` and `add_messages`."""

from graphrt.constants import END, START
from graphrt.graph.message import MessageGraph, MessagesState, add_messages
from graphrt.graph.state import CompiledStateGraph, StateGraph

__all__ = ("END", "START", "CompiledStateGraph", "MessageGraph", "MessagesState", "StateGraph", "add_messages")

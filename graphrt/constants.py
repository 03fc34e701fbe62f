"""Reserved names shared by the graph builders and the runtime."""

from __future__ import annotations

import sys
from typing import Final

__all__ = ("END", "START", "TAG_HIDDEN", "TAG_NOSTREAM")

START: Final = sys.intern("__start__")
"""The first (virtual) node: the graph's input is written by it."""
END: Final = sys.intern("__end__")
"""The last (virtual) node: an edge to it finishes that branch."""
TAG_NOSTREAM: Final = sys.intern("nostream")
"""Tag that disables streaming of a chat model's tokens."""
TAG_HIDDEN: Final = sys.intern("langsmith:hidden")
"""Tag that hides a node from tracing."""

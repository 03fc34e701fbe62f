"""Checkpointers: save a graph's state after every step, so threads can resume, rewind and fork."""

__all__ = ()

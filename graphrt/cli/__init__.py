"""The `graphrt` command line (`graphrt --help`, or `python -m graphrt`)."""

from graphrt.cli._main import main, main_exit

__all__ = ("main", "main_exit")

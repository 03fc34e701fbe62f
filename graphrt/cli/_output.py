"""How the command line prints: JSON for scripts, aligned tables for people, colours only on a terminal."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import json
import os
import sys
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import IO, Any

from pydantic import BaseModel

__all__ = ("Printer", "human_size", "to_jsonable", "use_colour")

_BOLD, _DIM, _GREEN, _RED, _RESET = "\x1b[1m", "\x1b[2m", "\x1b[32m", "\x1b[31m", "\x1b[0m"


def use_colour(stream: IO[str], choice: str = "auto") -> bool:
    """Colours when asked ("always"), never when asked or `NO_COLOR` is set, else only on a terminal."""
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def to_jsonable(value: Any) -> Any:
    """A value as plain JSON data: messages and models as dicts (with their type), dates as ISO text.

    Anything else becomes its `repr` under `{"__repr__": ...}`, so nothing is dropped silently.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else repr(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [to_jsonable(v) for v in items]
    if isinstance(value, BaseModel):
        data = value.model_dump(mode="json")
        return {"type": data["type"], **data} if "type" in data else data
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return {"__bytes__": base64.b64encode(bytes(value)).decode()}
    if hasattr(value, "value") and type(value).__name__ == "Interrupt":
        return {"value": to_jsonable(value.value), "id": getattr(value, "id", None)}
    return {"__repr__": repr(value)}


def human_size(size: int | None) -> str:
    """Bytes for people: "512 B", "4.2 KB", "3.1 MB"."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


class Printer:
    """Writes a command's result: one JSON document with `--json`, otherwise text for people."""

    def __init__(self, *, json_output: bool, colour: str = "auto", out: IO[str] | None = None) -> None:
        self.out = out or sys.stdout
        self.json_output = json_output
        self.colour = use_colour(self.out, colour)

    def style(self, text: str, *styles: str) -> str:
        if not self.colour or not styles:
            return text
        codes = "".join({"bold": _BOLD, "dim": _DIM, "green": _GREEN, "red": _RED}[s] for s in styles)
        return f"{codes}{text}{_RESET}"

    def json(self, data: Any) -> None:
        self.out.write(json.dumps(to_jsonable(data), indent=2, ensure_ascii=False) + "\n")

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """Columns padded to their widest cell; the header in bold on a terminal."""
        widths = [len(h) for h in headers]
        for row in rows:
            widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
        header = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
        self.line(self.style(header, "bold"))
        for row in rows:
            self.line("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())

"""Which saver and store a database argument opens: a table keyed by URL scheme.

A new backend is one `Backend(...)` line in `BACKENDS`. A plain path (or `sqlite:///path`) is a SQLite
file; `postgresql://...` and `redis://...` name servers. Passwords never appear in what is printed.
"""

from __future__ import annotations

import importlib
import re
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from graphrt.checkpoint.base import BaseCheckpointSaver
from graphrt.store.base import BaseStore

__all__ = ("BACKENDS", "Backend", "CliError", "open_saver", "open_store", "redact", "sqlite_path")


class CliError(Exception):
    """An error the command line reports as one line, without a traceback."""


@dataclass(frozen=True, slots=True)
class Backend:
    """How to open one kind of database."""

    name: str
    schemes: tuple[str, ...]
    saver: str
    """"module:Class" of the checkpoint saver; it has a `from_conn_string` context manager."""
    store: str | None
    """"module:Class" of the store, if the backend has one."""
    extra: str | None
    """The pip extra that installs the backend's driver."""


BACKENDS: tuple[Backend, ...] = (
    Backend(
        "SQLite",
        ("", "sqlite", "file"),
        "graphrt.checkpoint.sqlite:SqliteSaver",
        "graphrt.store.sqlite:SqliteStore",
        None,
    ),
    Backend(
        "PostgreSQL",
        ("postgres", "postgresql"),
        "graphrt.checkpoint.postgres:PostgresSaver",
        "graphrt.store.postgres:PostgresStore",
        "postgres",
    ),
    Backend("Redis", ("redis", "rediss"), "graphrt.checkpoint.redis:RedisSaver", None, "redis"),
)

_GRAPHRT_TABLES = ("graphrt_checkpoints", "graphrt_store")


def redact(target: str) -> str:
    """`target` with any password replaced by `***` (URL userinfo or a `password=` keyword)."""
    target = re.sub(r"(?i)(password\s*=\s*)('[^']*'|\S+)", r"\1***", target)
    try:
        parts = urlsplit(target)
    except ValueError:
        return target
    if parts.password is None:
        return target
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def _scrub(message: str, target: str) -> str:
    """An error message from a driver, with the target's password (if any) taken out."""
    try:
        password = urlsplit(target).password
    except ValueError:
        password = None
    for match in re.finditer(r"(?i)password\s*=\s*('[^']*'|\S+)", target):
        message = message.replace(match.group(1), "***")
    if password:
        message = message.replace(password, "***")
    return message


def backend_for(target: str) -> Backend:
    """The backend `target`'s scheme names; a plain path is SQLite."""
    if "://" in target:
        scheme = target.split("://", 1)[0].lower()
    elif re.match(r"^\s*(host|dbname|user|port|service)\s*=", target):
        scheme = "postgresql"  # a libpq keyword DSN: "host=... dbname=..."
    else:
        scheme = ""
    for backend in BACKENDS:
        if scheme in backend.schemes:
            return backend
    known = ", ".join(f"{s}://" for b in BACKENDS for s in b.schemes if s)
    raise CliError(f"Unknown database scheme '{scheme}://' in {redact(target)}: use a SQLite path or one of {known}")


def sqlite_path(target: str) -> str:
    """The file a SQLite target names (`path`, `sqlite:///path` or `file:path`)."""
    for prefix in ("sqlite:///", "sqlite://", "file://", "file:"):
        if target.startswith(prefix):
            return target[len(prefix) :]
    return target


def _load(backend: Backend, spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise CliError(f"{backend.name} support is not available in this build of graphrt") from None
        raise CliError(
            f"{backend.name} support needs graphrt[{backend.extra}]: pip install 'graphrt[{backend.extra}]' "
            f"(missing module '{exc.name}')"
        ) from None
    return getattr(module, attr)


def check_sqlite(target: str, *, need: str, create: bool = False) -> str:
    """The path of an existing graphrt SQLite database (checked read-only), or a clear error.

    Args:
        need: "checkpoints" or "store": the table family the command reads.
        create: The command may create a new database (only `import-langgraph`'s destination).
    """
    path = sqlite_path(target)
    if not Path(path).exists():
        if create:
            return path
        raise CliError(f"No such database file: {path}")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise CliError(f"{path} is not a SQLite database ({exc})") from None
    if create and not tables:
        return path
    if not tables & set(_GRAPHRT_TABLES):
        hint = (
            " It looks like a LangGraph database: copy it with `graphrt import-langgraph`."
            if "checkpoints" in tables
            else ""
        )
        raise CliError(f"{path} is not a graphrt database (it has no graphrt tables).{hint}")
    if need == "store" and "graphrt_store" not in tables and not create:
        raise CliError(f"{path} has no graphrt store (no store items were ever written to it)")
    return path


@contextmanager
def open_saver(target: str, *, create: bool = False) -> Iterator[BaseCheckpointSaver[Any]]:
    """The checkpoint saver of `target`, closed on exit."""
    backend = backend_for(target)
    conn_string = check_sqlite(target, need="checkpoints", create=create) if backend.name == "SQLite" else target
    cls = _load(backend, backend.saver)
    with _opened(cls.from_conn_string(conn_string), backend, target) as saver:
        yield saver


@contextmanager
def open_store(target: str, *, create: bool = False, index: dict[str, Any] | None = None) -> Iterator[BaseStore]:
    """The store of `target`, closed on exit."""
    backend = backend_for(target)
    if backend.store is None:
        raise CliError(f"{backend.name} has no graphrt store")
    conn_string = check_sqlite(target, need="store", create=create) if backend.name == "SQLite" else target
    cls = _load(backend, backend.store)
    kwargs = {"index": index} if index else {}
    with _opened(cls.from_conn_string(conn_string, **kwargs), backend, target) as store:
        yield store


@contextmanager
def _opened(manager: AbstractContextManager[Any], backend: Backend, target: str) -> Iterator[Any]:
    """Enter a backend's context manager; a connection failure becomes one redacted line."""
    with ExitStack() as stack:
        try:
            value = stack.enter_context(manager)
            if backend.name != "SQLite" and hasattr(value, "setup"):
                value.setup()  # connects now, so an unreachable server fails here with a clear error
        except CliError:
            raise
        except Exception as exc:
            if backend.name == "SQLite":
                raise
            message = _scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, target)
            raise CliError(f"Cannot reach {backend.name} at {redact(target)}: {message}") from None
        yield value

"""graphrt's loggers and the few helpers the engine and savers call (standard `logging`, silent by default).

Loggers: `graphrt` (a `NullHandler`, so nothing is printed unless the application configures logging),
`graphrt.run` (run start and end, steps, retries: DEBUG/INFO), `graphrt.checkpoint` (checkpoints saved
with their sizes: DEBUG; conflicts refused: WARNING), `graphrt.connection` (reconnects: WARNING).
Each helper returns at once when its level is off, so a silent logger costs one check on the hot path.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

__all__ = (
    "checkpoint_logger",
    "connection_logger",
    "log_checkpoint_saved",
    "log_conflict",
    "log_reconnect",
    "log_retry",
    "log_run_end",
    "log_run_start",
    "log_step",
    "print_debug",
    "run_logger",
)

logging.getLogger("graphrt").addHandler(logging.NullHandler())
run_logger = logging.getLogger("graphrt.run")
checkpoint_logger = logging.getLogger("graphrt.checkpoint")
connection_logger = logging.getLogger("graphrt.connection")


def log_run_start(label: str) -> None:
    """INFO: a run starts (`label` names its thread, or says it has none)."""
    if run_logger.isEnabledFor(logging.INFO):
        run_logger.info("run start: %s", label or "no checkpointer")


def log_run_end(label: str, steps: int, error: BaseException | None = None) -> None:
    """INFO: a run ended after `steps` steps; WARNING with the error's type when it failed."""
    if error is None:
        if run_logger.isEnabledFor(logging.INFO):
            run_logger.info("run end: %s after %d step(s)", label or "no checkpointer", steps)
        return
    if type(error).__name__ == "ThreadConflictError":
        log_conflict(error)
    if run_logger.isEnabledFor(logging.WARNING):
        run_logger.warning(
            "run failed: %s after %d step(s): %s", label or "no checkpointer", steps, type(error).__name__
        )


def log_step(tasks: Sequence[Any]) -> None:
    """DEBUG: a step runs these tasks (names are read only when the line is logged: this is on every step)."""
    if run_logger.isEnabledFor(logging.DEBUG):
        names = [t.name for t in tasks]
        step = tasks[0].ctx.step if tasks else -1
        run_logger.debug("step %d: %d task(s): %s", step, len(names), ", ".join(names))


def log_retry(name: str, attempt: int, delay: float, error: BaseException) -> None:
    """INFO: a task failed and will run again after `delay` seconds."""
    if run_logger.isEnabledFor(logging.INFO):
        run_logger.info(
            "retry: task '%s' attempt %d failed with %s; next attempt in %.3fs",
            name,
            attempt,
            type(error).__name__,
            delay,
        )


def log_checkpoint_saved(
    thread_id: str, checkpoint_ns: str, checkpoint_id: str, record: int, values: Sequence[int]
) -> None:
    """DEBUG: a checkpoint was saved: its record's bytes and those of each changed channel value."""
    if checkpoint_logger.isEnabledFor(logging.DEBUG):
        checkpoint_logger.debug(
            "checkpoint saved: thread '%s'%s id %s: %d bytes (record %d, %d value(s) %d)",
            thread_id,
            f" ns '{checkpoint_ns}'" if checkpoint_ns else "",
            checkpoint_id,
            record + sum(values),
            record,
            len(values),
            sum(values),
        )


def log_conflict(error: Any) -> None:
    """WARNING: a save was refused because another run moved the thread on."""
    if checkpoint_logger.isEnabledFor(logging.WARNING):
        checkpoint_logger.warning("conflict refused: %s", error)


def log_reconnect(backend: str, attempt: int, error: BaseException) -> None:
    """WARNING: a backend lost its connection and reconnects (for the server backends to call)."""
    if connection_logger.isEnabledFor(logging.WARNING):
        connection_logger.warning(
            "reconnect: %s attempt %d after %s: %s", backend, attempt, type(error).__name__, error
        )


def print_debug(mode: str, chunk: Any) -> None:
    """Print one `debug=True`/`print_mode` line: the mode in bold on a terminal, plain text otherwise."""
    out = sys.stdout
    isatty = getattr(out, "isatty", None)
    label = f"\x1b[1m[{mode}]\x1b[0m" if isatty is not None and isatty() else f"[{mode}]"
    print(f"{label} {chunk}", file=out)

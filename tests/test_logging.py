"""The `graphrt` loggers (silent by default) and `debug=True` output without escapes off a terminal."""

from __future__ import annotations

import io
import logging
import operator
import sys
import threading
from pathlib import Path
from typing import Annotated, Any, TypedDict

import anyio
import pytest

from graphrt.checkpoint.memory import InMemorySaver
from graphrt.checkpoint.sqlite import SqliteSaver
from graphrt.errors import ThreadConflictError
from graphrt.graph import END, START, StateGraph
from graphrt.types import RetryPolicy


class State(TypedDict):
    items: Annotated[list[str], operator.add]


def build(fail_times: int = 0) -> StateGraph:
    calls = {"n": 0}

    def flaky(state: State) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] <= fail_times:
            raise ConnectionError("flaky")
        return {"items": ["x" * 100]}

    builder = StateGraph(State)
    builder.add_node("flaky", flaky, retry_policy=RetryPolicy(initial_interval=0.001, jitter=False))
    builder.add_edge(START, "flaky")
    builder.add_edge("flaky", END)
    return builder


def test_the_graphrt_logger_is_silent_by_default() -> None:
    import graphrt._log  # noqa: F401

    root = logging.getLogger("graphrt")
    assert any(isinstance(h, logging.NullHandler) for h in root.handlers)
    assert not any(not isinstance(h, logging.NullHandler) for h in root.handlers)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_run_step_retry_and_checkpoint_events(
    backend: str, mode: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="graphrt")
    with SqliteSaver.from_conn_string(str(tmp_path / "x.sqlite")) if backend == "sqlite" else InMemorySaver() as saver:
        graph = build(fail_times=1).compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "t"}}
        if mode == "sync":
            graph.invoke({"items": []}, config)
        else:
            anyio.run(graph.ainvoke, {"items": []}, config)
    records = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    messages = [m for _, _, m in records]
    assert ("graphrt.run", "INFO", "run start: thread 't'") in records
    assert ("graphrt.run", "DEBUG", "step 1: 1 task(s): flaky") in records
    assert (
        "graphrt.run",
        "INFO",
        "retry: task 'flaky' attempt 1 failed with ConnectionError; next attempt in 0.001s",
    ) in records
    assert ("graphrt.run", "INFO", "run end: thread 't' after 2 step(s)") in records
    saved = [m for m in messages if m.startswith("checkpoint saved: thread 't' id ")]
    assert len(saved) == 3  # the input checkpoint, __start__'s (step 0) and flaky's (step 1)
    assert all(r[0] == "graphrt.checkpoint" and r[1] == "DEBUG" for r in records if r[2] in saved)
    # the step-0 checkpoint carries the 100-character item: its value bytes say so
    value_bytes = int(saved[-1].rsplit(" ", 1)[1].rstrip(")"))
    assert 100 <= value_bytes < 200


def test_a_refused_conflict_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    saver = InMemorySaver()
    graph = build().compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"items": []}, config)
    head = saver.get_tuple(config)
    assert head is not None
    caplog.set_level(logging.INFO, logger="graphrt")
    moved = {
        "configurable": {
            "thread_id": "t",
            "checkpoint_ns": "",
            "checkpoint_id": head.config["configurable"]["checkpoint_id"],
        }
    }
    with pytest.raises(ThreadConflictError):
        saver.put_guarded(moved, head.checkpoint, head.metadata, {}, expected_head="someone-else")
        # the engine's run-end hook is what logs conflicts; drive it through a run that loses its thread:

    refused: list[BaseException] = []

    def other_run() -> None:
        try:
            graph.invoke({"items": ["other"]}, config)
        except ThreadConflictError as exc:
            refused.append(exc)

    def busy(state: State) -> dict[str, Any]:
        # another run (another thread: an invoke inside a node would run nested) is refused the thread
        other = threading.Thread(target=other_run)
        other.start()
        other.join()
        return {"items": ["mine"]}

    builder = StateGraph(State)
    builder.add_node("busy", busy)
    builder.add_edge(START, "busy")
    builder.add_edge("busy", END)
    builder.compile(checkpointer=saver).invoke({"items": []}, config)
    assert len(refused) == 1
    names = [(r.name, r.levelname) for r in caplog.records if r.getMessage().startswith("conflict refused: ")]
    assert names == [("graphrt.checkpoint", "WARNING")]  # the refused claim; the owner's run went on


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("tty", [False, True])
def test_debug_output_has_escapes_only_on_a_terminal(tty: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    out = Tty() if tty else io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    build().compile(debug=True).invoke({"items": []})
    text = out.getvalue()
    lines = text.splitlines()
    if tty:
        assert "\x1b[1m[values]\x1b[0m {'items': ['" + "x" * 100 + "']}" in lines
    else:
        assert "\x1b" not in text
        assert "[values] {'items': ['" + "x" * 100 + "']}" in lines
        assert "[updates] {'flaky': {'items': ['" + "x" * 100 + "']}}" in lines

"""A user's exception propagates unwrapped, with a note naming the task it came from."""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.errors import EmptyInputError
from graphrt.graph import START, StateGraph
from tests.engine.conftest import exact, run


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


class Boom(Exception):
    pass


def graph_raising(error: BaseException, *, async_node: bool = False) -> Any:
    def bad(state: State) -> dict[str, Any]:
        raise error

    async def abad(state: State) -> dict[str, Any]:
        raise error

    builder = StateGraph(State)
    builder.add_node("ok", lambda s: {"log": ["ok"]})
    builder.add_node("bad", abad if async_node else bad)
    builder.add_edge(START, "ok")
    builder.add_edge("ok", "bad")
    return builder.compile()


def notes_of(exc: BaseException) -> list[str]:
    return list(getattr(exc, "__notes__", []))


def test_the_same_exception_object_propagates(mode: str) -> None:
    error = Boom("kaput")
    with pytest.raises(Boom) as info:
        run(graph_raising(error), {"log": []}, mode)
    assert info.value is error
    assert type(info.value) is Boom
    assert info.value.args == ("kaput",)


def test_the_exception_gains_a_note_naming_the_node(mode: str) -> None:
    with pytest.raises(Boom) as info:
        run(graph_raising(Boom()), {"log": []}, mode)
    notes = notes_of(info.value)
    assert notes
    assert all(note.startswith("During task with name 'bad' and id '") for note in notes)


def test_async_node_exception_propagates_with_a_note() -> None:
    error = Boom("async")
    with pytest.raises(Boom) as info:
        run(graph_raising(error, async_node=True), {"log": []}, "async")
    assert info.value is error
    assert notes_of(info.value)[0].startswith("During task with name 'bad' and id '")


def test_builtin_exceptions_are_not_wrapped(mode: str) -> None:
    error = KeyError("missing")
    with pytest.raises(KeyError) as info:
        run(graph_raising(error), {"log": []}, mode)
    assert info.value is error


def test_stream_yields_earlier_steps_before_raising(mode: str) -> None:
    graph = graph_raising(Boom())
    got: list[Any] = []

    async def collect() -> None:
        async for chunk in graph.astream({"log": []}):
            got.append(chunk)

    with pytest.raises(Boom):
        if mode == "sync":
            for chunk in graph.stream({"log": []}):
                got.append(chunk)
        else:
            asyncio.run(collect())
    assert got == [{"ok": {"log": ["ok"]}}]


def test_error_in_a_conditional_edge_names_its_source_node(mode: str) -> None:
    def route(state: State) -> str:
        raise Boom("route")

    builder = StateGraph(State)
    builder.add_node("src", lambda s: {"log": ["src"]})
    builder.add_edge(START, "src")
    builder.add_conditional_edges("src", route)
    with pytest.raises(Boom) as info:
        run(builder.compile(), {"log": []}, mode)
    assert notes_of(info.value)[0].startswith("During task with name 'src' and id '")


def test_error_in_one_parallel_node_fails_the_run(mode: str) -> None:
    def bad(state: State) -> dict[str, Any]:
        raise Boom("parallel")

    builder = StateGraph(State)
    builder.add_node("fine", lambda s: {"log": ["fine"]})
    builder.add_node("bad", bad)
    builder.add_node("after", lambda s: {"log": ["after"]})
    builder.add_edge(START, "fine")
    builder.add_edge(START, "bad")
    builder.add_edge("fine", "after")
    with pytest.raises(Boom, match="parallel"):
        run(builder.compile(), {"log": []}, mode)


def test_none_input_without_a_checkpoint_raises_empty_input(mode: str) -> None:
    builder = StateGraph(State)
    builder.add_node("n", lambda s: {})
    builder.add_edge(START, "n")
    with pytest.raises(EmptyInputError, match=exact("Received no input for __start__")):
        run(builder.compile(), None, mode)

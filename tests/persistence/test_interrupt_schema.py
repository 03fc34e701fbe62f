"""`interrupt(value, response_schema=...)`: the schema is surfaced, answers are validated, and a bad answer
can be replaced by a good one."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from typing_extensions import TypedDict

from graphrt.checkpoint.memory import InMemorySaver
from graphrt.errors import is_invalid_resume
from graphrt.graph import START, StateGraph
from graphrt.prebuilt import ToolNode
from graphrt.tools import tool
from graphrt.types import Command, Interrupt, interrupt
from tests.persistence.conftest import get_state, history, run, steps, thread

INTERRUPT = "__interrupt__"


class Decision(BaseModel):
    ok: bool


class Amount(TypedDict):
    n: int


@dataclasses.dataclass
class Point:
    x: int
    y: int


# JSON Schemas written out by hand (pydantic's output for the classes above), not computed by the code.
DECISION_SCHEMA = {
    "properties": {"ok": {"title": "Ok", "type": "boolean"}},
    "required": ["ok"],
    "title": "Decision",
    "type": "object",
}
AMOUNT_SCHEMA = {
    "properties": {"n": {"title": "N", "type": "integer"}},
    "required": ["n"],
    "title": "Amount",
    "type": "object",
}


class State(TypedDict, total=False):
    x: str
    answer: Any


def asking(schema: Any, calls: list[Any]) -> Any:
    builder = StateGraph(State)

    def node(state: State) -> State:
        calls.append(state.get("x"))
        return {"answer": interrupt("approve?", response_schema=schema)}

    builder.add_node("node", node)
    builder.add_edge(START, "node")
    return builder


def test_a_pydantic_schema_is_surfaced_as_json_schema_and_the_answer_validated(saver: Any, mode: str) -> None:
    calls: list[Any] = []
    graph = asking(Decision, calls).compile(checkpointer=saver)
    out = run(graph, {"x": "a"}, mode, thread())
    (asked,) = out[INTERRUPT]
    assert (asked.value, asked.response_schema) == ("approve?", DECISION_SCHEMA)
    # The saved interrupt carries the schema too.
    (pending,) = get_state(graph, thread(), mode).interrupts
    assert (pending.id, pending.response_schema) == (asked.id, DECISION_SCHEMA)
    out = run(graph, Command(resume={"ok": "yes"}), mode, thread())
    assert out == {"x": "a", "answer": Decision(ok=True)}


def test_a_bad_answer_raises_and_a_new_answer_replaces_it(saver: Any, mode: str) -> None:
    calls: list[Any] = []
    graph = asking(Decision, calls).compile(checkpointer=saver)
    run(graph, {"x": "a"}, mode, thread())
    with pytest.raises(ValidationError) as caught:
        run(graph, Command(resume={"ok": "maybe"}), mode, thread())
    assert is_invalid_resume(caught.value)
    snapshot = get_state(graph, thread(), mode)
    assert snapshot.next == ("node",)
    assert [i.value for i in snapshot.interrupts] == ["approve?"]
    assert steps(history(graph, thread(), mode)) == [("loop", 0), ("input", -1)]  # nothing new was saved
    out = run(graph, Command(resume={"ok": False}), mode, thread())
    assert out["answer"] == Decision(ok=False)
    assert calls == ["a", "a", "a"]


def test_a_dict_schema_is_surfaced_as_given_and_not_checked(saver: Any, mode: str) -> None:
    graph = asking({"type": "string"}, []).compile(checkpointer=saver)
    out = run(graph, {"x": "a"}, mode, thread())
    assert out[INTERRUPT][0].response_schema == {"type": "string"}
    assert run(graph, Command(resume=5), mode, thread())["answer"] == 5


@pytest.mark.parametrize(
    ("schema", "answer", "want", "surfaced"),
    [
        (Amount, {"n": "5"}, {"n": 5}, AMOUNT_SCHEMA),
        (Point, {"x": 1, "y": "2"}, Point(1, 2), None),
        (int, "7", 7, {"type": "integer"}),
    ],
)
def test_typed_dicts_dataclasses_and_plain_types_validate_too(
    schema: Any, answer: Any, want: Any, surfaced: Any
) -> None:
    graph = asking(schema, []).compile(checkpointer=InMemorySaver())
    out = graph.invoke({"x": "a"}, thread())
    if surfaced is not None:
        assert out[INTERRUPT][0].response_schema == surfaced
    assert out[INTERRUPT][0].response_schema["type"] in ("object", "integer")
    assert graph.invoke(Command(resume=answer), thread())["answer"] == want


def test_without_a_schema_the_interrupt_has_none() -> None:
    graph = asking(None, []).compile(checkpointer=InMemorySaver())
    (asked,) = graph.invoke({"x": "a"}, thread())[INTERRUPT]
    assert asked.response_schema is None
    assert repr(asked) == f"Interrupt(value='approve?', id='{asked.id}', response_schema=None)"
    assert Interrupt("v", "i") == Interrupt("v", "i", response_schema=None)


def test_a_tool_node_lets_an_invalid_answer_propagate_instead_of_reporting_a_tool_error() -> None:
    @tool
    def approve(item: str) -> str:
        """Ask a human to approve `item`."""
        decision = interrupt(f"approve {item}?", response_schema=Decision)
        return "approved" if decision.ok else "rejected"

    from graphrt.graph import MessagesState
    from graphrt.messages import AIMessage

    builder = StateGraph(MessagesState)
    builder.add_node("tools", ToolNode([approve]))  # handle_tool_errors=True by default
    builder.add_edge(START, "tools")
    graph = builder.compile(checkpointer=InMemorySaver())
    call = {"name": "approve", "args": {"item": "x"}, "id": "c1"}
    out = graph.invoke({"messages": [AIMessage("", tool_calls=[call])]}, thread())
    assert out[INTERRUPT][0].response_schema == DECISION_SCHEMA
    with pytest.raises(ValidationError) as caught:
        graph.invoke(Command(resume={"ok": "perhaps"}), thread())
    assert is_invalid_resume(caught.value)
    out = graph.invoke(Command(resume={"ok": True}), thread())
    assert out["messages"][-1].content == "approved"

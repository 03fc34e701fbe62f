"""`graphrt.prebuilt.interrupt`: the human-review request and answer types, used through `interrupt()`."""

from __future__ import annotations

from typing import Any, TypedDict

from graphrt.checkpoint.memory import InMemorySaver
from graphrt.graph import START, StateGraph
from graphrt.prebuilt.interrupt import ActionRequest, HumanInterrupt, HumanInterruptConfig, HumanResponse
from graphrt.types import Command, interrupt


class State(TypedDict, total=False):
    command: str
    answer: Any


def test_a_human_interrupt_round_trips_through_a_checkpointed_run() -> None:
    def review(state: State) -> State:
        request = HumanInterrupt(
            action_request=ActionRequest(action="run", args={"command": state["command"]}),
            config=HumanInterruptConfig(allow_ignore=True, allow_respond=True, allow_edit=True, allow_accept=True),
            description="Run this?",
        )
        response: HumanResponse = interrupt([request])[0]
        return {"answer": response}

    builder = StateGraph(State)
    builder.add_node("review", review)
    builder.add_edge(START, "review")
    graph = builder.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    asked = graph.invoke({"command": "ls"}, config)["__interrupt__"][0].value
    assert asked[0]["action_request"] == {"action": "run", "args": {"command": "ls"}}
    answer = HumanResponse(type="edit", args=ActionRequest(action="run", args={"command": "ls -l"}))
    assert graph.invoke(Command(resume=[answer]), config)["answer"] == answer

"""A run's `config["metadata"]` carries the thread it runs on, as LangGraph's does: expected values are LangGraph
1.2.22's answers for the same graphs (`ensure_config` copies a fixed set of `configurable` keys)."""

from __future__ import annotations

import re
from typing import Any

from graphrt.checkpoint.memory import InMemorySaver
from graphrt.config import RunnableConfig
from graphrt.graph import START, MessagesState, StateGraph
from graphrt.models import ScriptedChatModel


def _ns(value: Any) -> Any:
    """Task namespaces with their random ids masked."""
    return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>", value)


def _graph(seen: list[dict[str, Any]]) -> StateGraph[Any]:
    def node(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
        seen.append({k: _ns(v) if isinstance(v, str) else v for k, v in config["metadata"].items()})
        return {"messages": [{"role": "ai", "content": "x"}]}

    builder = StateGraph(MessagesState)
    builder.add_node("chat", node)
    builder.add_edge(START, "chat")
    return builder


def test_a_node_sees_the_thread_and_the_run_ids_in_its_metadata_but_not_other_configurable_keys() -> None:
    seen: list[dict[str, Any]] = []
    graph = _graph(seen).compile(checkpointer=InMemorySaver())
    configurable = {"thread_id": "T", "user_id": "u", "run_id": "R", "assistant_id": "A", "empty": ""}
    graph.invoke({"messages": [("user", "hi")]}, {"configurable": configurable, "metadata": {"m": 1}})
    assert seen == [
        {
            "m": 1,
            "thread_id": "T",
            "run_id": "R",
            "assistant_id": "A",
            "langgraph_step": 1,
            "langgraph_node": "chat",
            "langgraph_triggers": ("branch:to:chat",),
            "langgraph_path": ("__pregel_pull", "chat"),
            "langgraph_checkpoint_ns": "chat:<id>",
        }
    ]
    # The saved metadata is unchanged: no thread id in it (user_id and the run ids are, as before).
    saved = [h.metadata for h in graph.get_state_history({"configurable": {"thread_id": "T"}})]
    assert saved[0] == {
        "source": "loop",
        "step": 1,
        "parents": {},
        "m": 1,
        "run_id": "R",
        "assistant_id": "A",
        "user_id": "u",
        "empty": "",
    }


def test_a_subgraph_node_also_sees_its_parent_tasks_namespace() -> None:
    seen: list[dict[str, Any]] = []
    parent = StateGraph(MessagesState)
    parent.add_node("p", _graph(seen).compile())
    parent.add_edge(START, "p")
    parent.compile(checkpointer=InMemorySaver()).invoke(
        {"messages": [("user", "hi")]}, {"configurable": {"thread_id": "2"}}
    )
    assert seen == [
        {
            "thread_id": "2",
            "checkpoint_ns": "p:<id>",
            "langgraph_step": 1,
            "langgraph_node": "chat",
            "langgraph_triggers": ("branch:to:chat",),
            "langgraph_path": ("__pregel_pull", "chat"),
            "langgraph_checkpoint_ns": "p:<id>|chat:<id>",
        }
    ]


def test_streamed_tokens_carry_the_thread_id() -> None:
    model = ScriptedChatModel(["hello big world"])

    def chat(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("chat", chat)
    builder.add_edge(START, "chat")
    graph = builder.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "T", "user_id": "u"}}
    metadata = [meta for _, meta in graph.stream({"messages": [("user", "hi")]}, config, stream_mode="messages")]
    assert metadata
    assert {m["thread_id"] for m in metadata} == {"T"}
    assert not any("user_id" in m for m in metadata)

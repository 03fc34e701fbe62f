"""Agent-loop benchmark: `create_agent` on graphrt against LangGraph's prebuilt agent, and plain Python.

The shared harness's `react_agent_50` shape: a model that makes 50 sequential tool calls (one per turn),
then answers; the tool is a `@tool` function; the thread is checkpointed in memory (`InMemorySaver`).
graphrt runs `graphrt.prebuilt.create_agent`; the LangGraph side runs LangChain's `create_agent` when the
`langchain` package is installed, else `langgraph.prebuilt.create_react_agent` (the same loop; the table
says which ran). Both models are subclasses of their library's chat-model base class, answering from the
same rule. Prints median microseconds per tool call, wall time and CPU time (the process's; on a shared
machine it moves less with the load than wall time), and the ratios.

    python benchmarks/bench_agent.py
    LG_PYTHON=/path/to/langgraph/venv/bin/python python benchmarks/bench_agent.py

The machine may be shared: compare only figures from one sitting.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

K = 50


def next_reply(n_messages: int) -> tuple[str, list[dict[str, Any]]]:
    """(content, tool_calls): a tool call until K were made, then the answer."""
    calls = (n_messages - 1) // 2  # history: question, then (call, result) pairs
    if calls < K:
        return "", [{"name": "lookup", "args": {"q": calls}, "id": f"call_{calls}", "type": "tool_call"}]
    return f"answer after {calls} calls", []


def build(lib: str) -> Callable[[], list[str]]:
    """One agent run: returns the transcript's contents (checked against the expected one)."""
    if lib == "langgraph":
        import warnings

        from langchain_core.language_models import BaseChatModel
        from langchain_core.messages import AIMessage, HumanMessage
        from langchain_core.outputs import ChatGeneration, ChatResult
        from langchain_core.tools import tool
        from langgraph.checkpoint.memory import InMemorySaver

        warnings.filterwarnings("ignore")
        try:
            from langchain.agents import create_agent as make_agent
        except ImportError:
            from langgraph.prebuilt import create_react_agent as make_agent

        class LgModel(BaseChatModel):
            @property
            def _llm_type(self) -> str:
                return "bench"

            def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
                content, calls = next_reply(len(messages))
                return ChatResult(generations=[ChatGeneration(message=AIMessage(content, tool_calls=calls))])

            def bind_tools(self, tools: Any, **kw: Any) -> Any:
                return self

        model: Any = LgModel()
    else:
        from graphrt.checkpoint.memory import InMemorySaver
        from graphrt.messages import AIMessage, HumanMessage
        from graphrt.models import BaseChatModel as GrtBase
        from graphrt.prebuilt import create_agent as make_agent  # type: ignore[assignment]
        from graphrt.tools import tool  # type: ignore[assignment]

        class GrtModel(GrtBase):
            def _generate(self, messages: Any, options: Any) -> Any:
                content, calls = next_reply(len(messages))
                return AIMessage(content, tool_calls=calls)

        model = GrtModel()

    @tool
    def lookup(q: int) -> str:
        """Look something up."""
        return f"result {q}"

    agent = make_agent(model, [lookup], checkpointer=InMemorySaver())

    def run() -> list[str]:
        config = {"configurable": {"thread_id": uuid.uuid4().hex}, "recursion_limit": 2 * K + 10}
        out = agent.invoke({"messages": [HumanMessage("go")]}, config)
        return [m.content for m in out["messages"]]

    return run


EXPECTED = ["go"] + [c for i in range(K) for c in ("", f"result {i}")] + [f"answer after {K} calls"]


def plain() -> list[str]:
    """The same loop as plain Python: a list of dicts, the rule, the tool call."""
    history: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
    while True:
        content, calls = next_reply(len(history))
        history.append({"role": "assistant", "content": content, "tool_calls": calls})
        if not calls:
            return [m["content"] for m in history]
        history += [{"role": "tool", "content": f"result {c['args']['q']}", "tool_call_id": c["id"]} for c in calls]


def _factory() -> str:
    """Which LangGraph-side factory `build("langgraph")` uses here."""
    try:
        import langchain.agents  # noqa: F401
    except ImportError:
        return "langgraph.prebuilt.create_react_agent"
    return "langchain.agents.create_agent"


ROUNDS, REPEAT = 3, 7


def _samples(func: Callable[[], list[str]], repeat: int = REPEAT) -> tuple[list[float], list[float]]:
    """Wall and CPU µs per tool call of `repeat` runs, after a checked warm-up run."""
    if func() != EXPECTED:
        raise AssertionError("wrong transcript")
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        func()
        wall.append((time.perf_counter() - start) * 1e6 / K)
        cpu.append((time.process_time() - start_cpu) * 1e6 / K)
    return wall, cpu


def _langgraph_samples() -> tuple[list[float], list[float], str] | None:
    """LangGraph's samples, in this process or from `LG_PYTHON`'s; None when LangGraph is not available."""
    lg_python = os.environ.get("LG_PYTHON")
    try:
        if not lg_python:
            return (*_samples(build("langgraph")), _factory())
        out = subprocess.run([lg_python, __file__, "--json", "langgraph"], capture_output=True, text=True, check=True)
    except (ImportError, subprocess.CalledProcessError):
        return None
    wall, cpu, factory = json.loads(out.stdout)
    return wall, cpu, factory


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--json":
        print(json.dumps([*_samples(build(sys.argv[2])), _factory()]))
        return
    # The two sides alternate for a few rounds, so that a change in the machine's load hits both.
    ours: tuple[list[float], list[float]] = ([], [])
    theirs: tuple[list[float], list[float]] = ([], [])
    factory = "n/a (LangGraph not found: set LG_PYTHON)"
    agent = build("graphrt")
    for _ in range(ROUNDS):
        for into, got in zip(ours, _samples(agent), strict=True):
            into.extend(got)
        lg = _langgraph_samples()
        if lg is not None:
            theirs[0].extend(lg[0])
            theirs[1].extend(lg[1])
            factory = lg[2]
    floor = statistics.median(_samples(plain)[0])
    print(f"LangGraph side: {factory}; medians of {ROUNDS} x {REPEAT} runs, alternating")
    print("| react_agent_50, µs per tool call | graphrt | LangGraph | LangGraph / graphrt | graphrt / plain |")
    print("|---|---:|---:|---:|---:|")
    for name, index in (("wall time", 0), ("CPU time", 1)):
        mine = statistics.median(ours[index])
        other = statistics.median(theirs[index]) if theirs[index] else None
        lg_text, ratio = (f"{other:.1f}", f"{other / mine:.1f}x") if other else ("n/a", "n/a")
        print(f"| {name} | {mine:.1f} | {lg_text} | {ratio} | {mine / floor:.0f}x |")
    print(f"| plain Python (wall) | {floor:.2f} | | | |")


if __name__ == "__main__":
    main()

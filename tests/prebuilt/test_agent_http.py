"""`create_agent` over a real HTTP client (`ChatOpenAI`) against an OpenAI-compatible server in the test
process: the tool schemas the model is offered, and the tool results it is sent back."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from graphrt.models import ChatOpenAI
from graphrt.prebuilt import ToolRuntime, create_agent
from graphrt.store.memory import InMemoryStore
from graphrt.tools import tool
from tests.models.conftest import FakeServer, Reply

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.httpd.shutdown()
        fake.httpd.server_close()
        fake.thread.join(timeout=5)


@dataclass
class Context:
    user_id: str


@tool
def get_user_info(runtime: ToolRuntime[Context]) -> str:
    """Look up user info."""
    item = runtime.store.get(("users",), runtime.context.user_id)  # type: ignore[union-attr]
    return str(item.value) if item else "Unknown user"


def completion(message: dict[str, object], finish: str, id: str) -> Reply:
    return Reply(
        json={
            "id": id,
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        }
    )


def test_agent_talks_to_an_openai_compatible_server(server: FakeServer) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_user_info", "arguments": "{}"}}
    server.reply(
        completion({"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls", "r1"),
        completion({"role": "assistant", "content": "You are John Smith."}, "stop", "r2"),
    )
    store = InMemoryStore()
    store.put(("users",), "user_123", {"name": "John Smith"})
    model = ChatOpenAI(model="test-model", base_url=server.url, api_key="not-a-real-key")
    agent = create_agent(model, [get_user_info], system_prompt="Be brief.", store=store, context_schema=Context)
    out = agent.invoke({"messages": [{"role": "user", "content": "who am I?"}]}, context=Context("user_123"))
    assert [m.text for m in out["messages"]] == ["who am I?", "", "{'name': 'John Smith'}", "You are John Smith."]
    first, second = (r.body for r in server.requests)
    # The injected runtime is not part of the schema the model sees.
    assert [t["function"]["name"] for t in first["tools"]] == ["get_user_info"]
    assert first["tools"][0]["function"]["parameters"]["properties"] == {}
    assert first["messages"][0] == {"role": "system", "content": "Be brief."}
    tool_reply = second["messages"][-1]
    assert tool_reply["role"] == "tool" and tool_reply["tool_call_id"] == "call_1"
    assert tool_reply["content"] == "{'name': 'John Smith'}"

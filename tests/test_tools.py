"""The `@tool` decorator and tool objects, in sync and async mode."""

from __future__ import annotations

import contextvars
import threading
from typing import Annotated, Any

import anyio
import pytest
from pydantic import BaseModel, ValidationError

import graphrt.tools as tools_module
from graphrt.config import RunnableConfig
from graphrt.messages import ToolMessage
from graphrt.tools import BaseTool, InjectedToolArg, InjectedToolCallId, StructuredTool, tool
from graphrt.types import Command

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def run(t: BaseTool, input: Any, mode: str, config: RunnableConfig | None = None) -> Any:
    if mode == "sync":
        return t.invoke(input, config)
    return anyio.run(t.ainvoke, input, config)


def call(name: str, args: dict[str, Any], id: str | None = "c1") -> dict[str, Any]:
    return {"name": name, "args": args, "id": id, "type": "tool_call"}


@tool
def add(a: int, b: int = 2) -> int:
    """Add two numbers.

    Args:
        a: first
        b: second
    """
    return a + b


def test_public_surface() -> None:
    assert isinstance(tools_module.__all__, tuple)
    for name in tools_module.__all__:
        assert hasattr(tools_module, name), name


def test_plain_decorator() -> None:
    assert isinstance(add, StructuredTool) and isinstance(add, BaseTool)
    assert add.name == "add"
    assert add.description == "Add two numbers.\n\n    Args:\n        a: first\n        b: second"
    assert add.return_direct is False
    assert add.args == {
        "a": {"title": "A", "type": "integer"},
        "b": {"default": 2, "title": "B", "type": "integer"},
    }
    assert add.tool_call_schema is add.args_schema
    assert add.args_schema.model_json_schema() == {
        "description": "Add two numbers.\n\nArgs:\n    a: first\n    b: second",
        "properties": add.args,
        "required": ["a"],
        "title": "add",
        "type": "object",
    }


def test_named_decorator_and_call_form(mode: str) -> None:
    @tool("shout")
    def echo(text: str) -> str:
        """Echo."""
        return text.upper()

    assert echo.name == "shout"
    assert run(echo, {"text": "hi"}, mode) == "HI"
    made = tool("twice", lambda x: x * 2, description="Double x.")
    assert (made.name, made.description) == ("twice", "Double x.")
    assert run(made, {"x": 4}, mode) == 8


def test_options_decorator() -> None:
    @tool(description="Explicit.", return_direct=True)
    def f(a: int) -> int:
        return a

    assert (f.name, f.description, f.return_direct) == ("f", "Explicit.", True)


def test_parse_docstring() -> None:
    @tool(parse_docstring=True)
    def search(query: str, limit: int = 3) -> str:
        """Search the web.

        Returns the best pages.

        Args:
            query: what to look for
            limit (int): how many results to keep,
                at most ten

        Returns:
            Page titles.
        """
        return query

    assert search.description == "Search the web. Returns the best pages."
    assert search.args["query"]["description"] == "what to look for"
    assert search.args["limit"]["description"] == "how many results to keep, at most ten"


def test_parse_docstring_false_keeps_the_whole_docstring() -> None:
    @tool(parse_docstring=False)
    def f(a: int) -> int:
        """Do f.

        Args:
            a: the a
        """
        return a

    assert "description" not in f.args["a"]
    assert f.description.startswith("Do f.\n\n")


def test_docstring_or_description_is_required() -> None:
    def bare(a: int) -> int:
        return a

    with pytest.raises(ValueError, match=r"^Function must have a docstring if description not provided\.$"):
        tool(bare)


def test_invoke_with_dict(mode: str) -> None:
    assert run(add, {"a": 1}, mode) == 3
    assert run(add, {"a": 1, "b": 5, "ignored": 9}, mode) == 6
    assert run(add, {"a": "7"}, mode) == 9  # validated and coerced by the schema


def test_invalid_arguments_raise_validation_error(mode: str) -> None:
    with pytest.raises(ValidationError):
        run(add, {"a": "x"}, mode)
    with pytest.raises(ValidationError):
        run(add, {}, mode)


def test_function_defaults_apply_to_missing_arguments(mode: str) -> None:
    sentinel: list[int] = []

    @tool
    def f(a: int, bucket: list[int] = sentinel) -> bool:
        """F."""
        return bucket is sentinel

    assert run(f, {"a": 1}, mode) is True


def test_invoke_with_string(mode: str) -> None:
    @tool
    def shout(text: str) -> str:
        """Shout."""
        return text.upper()

    @tool
    def ping() -> str:
        """Ping."""
        return "pong"

    assert run(shout, "hi", mode) == "HI"
    assert run(ping, "", mode) == "pong"
    with pytest.raises(ValueError) as info:
        run(add, "5", mode)
    assert str(info.value) == "Tool 'add' takes 2 arguments (a, b); pass them as a dict, not a string."


def test_invoke_with_other_input_fails(mode: str) -> None:
    with pytest.raises(TypeError, match=r"^Tool 'add' takes a dict of arguments, a string or a ToolCall, got 5$"):
        run(add, 5, mode)


def test_tool_call_returns_tool_message(mode: str) -> None:
    result = run(add, call("add", {"a": 1}), mode)
    assert result == ToolMessage("3", name="add", tool_call_id="c1")


def test_tool_call_without_id_returns_the_raw_value(mode: str) -> None:
    assert run(add, call("add", {"a": 1}, id=None), mode) == 3


@pytest.mark.parametrize(
    ("value", "content"),
    [
        ("text", "text"),
        (None, "null"),
        ({"é": [1]}, '{"é": [1]}'),
        ([1, {"type": "text", "text": "x"}], '[1, {"type": "text", "text": "x"}]'),
        (["a", {"type": "text", "text": "x"}], ["a", {"type": "text", "text": "x"}]),
        (("a", "b"), ["a", "b"]),
        (frozenset(), "frozenset()"),
    ],
)
def test_tool_message_content(value: Any, content: Any, mode: str) -> None:
    @tool
    def f() -> Any:
        """F."""
        return value

    assert run(f, call("f", {}), mode).content == content


def test_messages_and_commands_pass_through(mode: str) -> None:
    message = ToolMessage("custom", tool_call_id="c1")
    command = Command(update={"x": 1})

    @tool
    def f(kind: str) -> Any:
        """F."""
        return {"message": message, "command": command, "list": [message, command]}[kind]

    assert run(f, call("f", {"kind": "message"}), mode) is message
    assert run(f, call("f", {"kind": "command"}), mode) is command
    assert run(f, call("f", {"kind": "list"}), mode) == [message, command]


def test_content_and_artifact(mode: str) -> None:
    @tool(response_format="content_and_artifact")
    def fetch(n: int) -> tuple[str, list[int]]:
        """Fetch."""
        return f"{n} items", list(range(n))

    assert run(fetch, call("fetch", {"n": 2}), mode) == ToolMessage(
        "2 items", name="fetch", tool_call_id="c1", artifact=[0, 1]
    )
    assert run(fetch, {"n": 2}, mode) == "2 items"

    @tool(response_format="content_and_artifact")
    def wrong() -> str:
        """Wrong."""
        return "just content"

    with pytest.raises(ValueError) as info:
        run(wrong, {}, mode)
    assert str(info.value) == (
        "Tool 'wrong' has response_format='content_and_artifact' and must return a (content, artifact) tuple, got str"
    )


def test_tool_errors_propagate_unchanged(mode: str) -> None:
    class Boom(Exception):
        pass

    @tool
    def f() -> None:
        """F."""
        raise Boom("no")

    with pytest.raises(Boom, match=r"^no$"):
        run(f, call("f", {}), mode)


class Store:
    """A stand-in for something an agent injects, marked the way prebuilt classes mark themselves."""

    __graphrt_inject__ = "given"


def test_injected_parameters_are_hidden_from_the_schema() -> None:
    @tool
    def f(
        a: int,
        secret: Annotated[str, InjectedToolArg],
        marker_instance: Annotated[str, InjectedToolArg()],
        call_id: Annotated[str, InjectedToolCallId],
        store: Store,
        runtime: Any,
        config: RunnableConfig,
    ) -> None:
        """F."""

    assert list(f.args) == ["a"]
    assert list(f.tool_call_schema.model_fields) == ["a"]


def test_injected_values_reach_the_function(mode: str) -> None:
    seen: dict[str, Any] = {}

    @tool
    def f(
        a: int,
        secret: Annotated[str, InjectedToolArg()],
        call_id: Annotated[str, InjectedToolCallId],
        store: Store,
        runtime: Any,
        config: RunnableConfig,
    ) -> str:
        """F."""
        seen.update(a=a, secret=secret, call_id=call_id, store=store, runtime=runtime, config=config)
        return "done"

    store = Store()
    args = {"a": "1", "secret": "s", "store": store, "runtime": "rt"}
    assert run(f, call("f", args, id="c9"), mode, {"tags": ["t"]}) == ToolMessage("done", name="f", tool_call_id="c9")
    assert seen == {
        "a": 1,
        "secret": "s",
        "call_id": "c9",
        "store": store,
        "runtime": "rt",
        "config": {"tags": ["t"]},
    }


def test_config_defaults_to_empty(mode: str) -> None:
    @tool
    def f(config: RunnableConfig) -> Any:
        """F."""
        return config

    assert run(f, {}, mode) == {}


def test_missing_required_injected_argument(mode: str) -> None:
    @tool
    def f(a: int, store: Store, optional: Annotated[int, InjectedToolArg] = 0) -> int:
        """F."""
        return a

    with pytest.raises(TypeError) as info:
        run(f, {"a": 1}, mode)
    assert str(info.value) == (
        "Tool 'f' needs the injected argument 'store'; pass it in the input (ToolNode and create_agent fill it in)."
    )
    assert run(f, {"a": 1, "store": Store()}, mode) == 1


def test_tool_call_id_needs_a_tool_call(mode: str) -> None:
    @tool
    def f(call_id: Annotated[str, InjectedToolCallId]) -> str:
        """F."""
        return call_id

    with pytest.raises(ValueError) as info:
        run(f, {}, mode)
    assert str(info.value) == (
        "When tool includes an InjectedToolCallId argument, tool must always be invoked with a full model "
        "ToolCall of the form: {'args': {...}, 'name': '...', 'type': 'tool_call', 'id': '...'} "
        "(tool 'f', parameter 'call_id')"
    )


def test_async_tool() -> None:
    @tool
    async def fetch(url: str) -> str:
        """Fetch."""
        await anyio.sleep(0)
        return f"got {url}"

    assert fetch.coroutine is not None and fetch.func is None
    assert anyio.run(fetch.ainvoke, {"url": "u"}) == "got u"
    with pytest.raises(NotImplementedError, match=r"^StructuredTool does not support sync invocation\.$"):
        fetch.invoke({"url": "u"})


def test_sync_tool_under_ainvoke_runs_in_a_worker_with_context() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    @tool
    def where() -> tuple[bool, str]:
        """Where."""
        return threading.current_thread() is threading.main_thread(), var.get()

    async def main() -> Any:
        var.set("set")
        return await where.ainvoke({})

    assert anyio.run(main) == (False, "set")


def test_from_function_with_both_sync_and_async() -> None:
    def sync_add(a: int) -> str:
        """Add."""
        return "sync"

    async def async_add(a: int) -> str:
        return "async"

    both = StructuredTool.from_function(func=sync_add, coroutine=async_add)
    assert both.name == "sync_add"
    assert both.invoke({"a": 1}) == "sync"
    assert anyio.run(both.ainvoke, {"a": 1}) == "async"
    with pytest.raises(ValueError, match=r"^Function and/or coroutine must be provided$"):
        StructuredTool.from_function()


def test_custom_args_schema(mode: str) -> None:
    class Args(BaseModel):
        """Custom."""

        a: int

    @tool(args_schema=Args)
    def f(a: int) -> int:
        """F."""
        return a * 10

    assert f.args_schema is Args
    assert run(f, {"a": "2"}, mode) == 20


def test_base_tool_subclass(mode: str) -> None:
    class Args(BaseModel):
        text: str

    class Upper(BaseTool):
        name = "upper"
        description = "Uppercase text."
        args_schema = Args

        def _run(self, **kwargs: Any) -> str:
            return str(kwargs["text"]).upper()

    upper = Upper()
    assert run(upper, "abc", mode) == "ABC"
    assert run(upper, call("upper", {"text": "x"}), mode) == ToolMessage("X", name="upper", tool_call_id="c1")
    assert repr(upper) == "Upper(name='upper', description='Uppercase text.')"


def test_annotated_strings_and_docstring_args_describe_arguments_as_langchain_does() -> None:
    """Pinned from langchain-core 1.7.2: the first string in `Annotated[T, ...]` describes an argument, a
    parsed docstring's `Args:` entry wins over it, and a parsed docstring's summary describes the schema."""

    @tool(parse_docstring=True)
    def both(a: Annotated[int, "from annotation"], b: Annotated[str, "b from annotation"] = "x") -> str:
        """Do it.

        More words here.

        Args:
            a: from docstring
            b: b doc
        """
        return "x"

    @tool
    def plain(a: Annotated[int, "first", "second"], c: Annotated[int, 5] = 1) -> str:
        """Plain."""
        return "x"

    assert both.tool_call_schema.model_json_schema() == {
        "description": "Do it. More words here.",
        "properties": {
            "a": {"description": "from docstring", "title": "A", "type": "integer"},
            "b": {"default": "x", "description": "b doc", "title": "B", "type": "string"},
        },
        "required": ["a"],
        "title": "both",
        "type": "object",
    }
    assert plain.args == {
        "a": {"description": "first", "title": "A", "type": "integer"},
        "c": {"default": 1, "title": "C", "type": "integer"},
    }
    # What a model is shown carries the description too.
    from graphrt.models._schema import tool_spec

    assert tool_spec(plain).parameters["properties"]["a"]["description"] == "first"

"""Types for asking a person to review an agent's action through `interrupt()` (LangGraph's agent-inbox schema)."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

__all__ = ("ActionRequest", "HumanInterrupt", "HumanInterruptConfig", "HumanResponse")


class HumanInterruptConfig(TypedDict):
    """What the person may do with the request."""

    allow_ignore: bool
    allow_respond: bool
    allow_edit: bool
    allow_accept: bool


class ActionRequest(TypedDict):
    """The action to review: its name and arguments."""

    action: str
    args: dict[str, Any]


class HumanInterrupt(TypedDict):
    """The value to pass to `interrupt()`: the action, what may be done with it, and an optional description."""

    action_request: ActionRequest
    config: HumanInterruptConfig
    description: str | None


class HumanResponse(TypedDict):
    """The person's answer (`Command(resume=...)`): accept, ignore, a text response, or an edited action."""

    type: Literal["accept", "ignore", "response", "edit"]
    args: str | ActionRequest | None

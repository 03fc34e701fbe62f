"""The chat model the examples use: a real provider when its key is set, the scripted model otherwise.

`ANTHROPIC_API_KEY` -> Claude (`GRAPHRT_EXAMPLE_MODEL` overrides the model, default the seeds'
"anthropic:claude-3-5-haiku-latest"); `OPENAI_API_KEY` -> an OpenAI-compatible endpoint
(`OPENAI_BASE_URL`, model from `GRAPHRT_EXAMPLE_MODEL`, default "openai:gpt-4o-mini"). With neither, the
`ScriptedChatModel` given by the example answers, and says so: its replies are named "scripted".
"""

from __future__ import annotations

import os
from typing import Any

from graphrt.models import ScriptedChatModel


def chat_model(scripted: ScriptedChatModel) -> Any:
    """A real chat model when a provider key is set, else `scripted`."""
    chosen = os.environ.get("GRAPHRT_EXAMPLE_MODEL")
    if os.environ.get("ANTHROPIC_API_KEY"):
        chosen = chosen or "anthropic:claude-3-5-haiku-latest"
    elif os.environ.get("OPENAI_API_KEY"):
        chosen = chosen or "openai:gpt-4o-mini"
    else:
        return scripted
    from graphrt.models import init_chat_model

    return init_chat_model(chosen)


def describe(model: Any) -> str:
    """One line saying which model answers."""
    if isinstance(model, ScriptedChatModel):
        return "scripted model (no ANTHROPIC_API_KEY or OPENAI_API_KEY set): replies come from rules, not an LLM"
    return f"{getattr(model, 'provider', '?')} model {getattr(model, 'model_name', '?')}"


# ---------------------------------------------------------------- scripted stand-ins for the seeds' chats

_NAME_PATTERNS = (r"\bmy name is (\w+)", r"\bI'?m (\w+)", r"\bUser name is (\w+)", r"\bname is (\w+)")


def _find_name(texts: list[str]) -> str | None:
    import re

    for text in reversed(texts):
        for pattern in _NAME_PATTERNS:
            found = re.search(pattern, text, re.IGNORECASE)
            if found:
                return found.group(1).capitalize()
    return None


def _greet(messages: list[Any]) -> str:
    name = _find_name([messages[-1].text])
    if "remember" in messages[-1].text.lower():
        return f"Hi {name}! I'll remember that your name is {name}."
    return f"Hi {name}! How are you doing today? Is there anything I can help you with?"


def _recall(messages: list[Any]) -> str:
    # Looks where a language model would: the system prompt (long-term memory) and the conversation.
    name = _find_name([m.text for m in messages if m.type in ("system", "human")][:-1])
    return f"Your name is {name}." if name else "I don't know your name yet. What is it?"


def name_chat_script() -> ScriptedChatModel:
    """The seeds' chat: "hi! I'm bob" / "Remember: my name is Bob", then "what's my name?"."""
    return ScriptedChatModel(
        rules=[
            (r"(?i)what('s| is) my name", _recall),
            (r"(?i)(my name is|I'm) \w+", _greet),
        ],
        default="(scripted) I only know how to greet you and recall your name.",
    )

"""Chat models: the protocol (`BaseChatModel`), a scripted model for tests and examples, and provider clients.

`init_chat_model("anthropic:claude-3-5-haiku-latest")` or `init_chat_model("openai:gpt-4o-mini")` picks a
provider client; `ScriptedChatModel` answers from a script without any network.
"""

from graphrt.models._anthropic import ChatAnthropic
from graphrt.models._base import BaseChatModel
from graphrt.models._http import (
    APIConnectionError,
    APIStatusError,
    ChatModelError,
    MalformedResponseError,
    MissingAPIKeyError,
    RateLimitError,
)
from graphrt.models._init import init_chat_model
from graphrt.models._openai import ChatOpenAI
from graphrt.models._schema import OutputParserError
from graphrt.models._scripted import ScriptedChatModel, ScriptExhaustedError
from graphrt.models._structured import StructuredOutputModel

__all__ = (
    "APIConnectionError",
    "APIStatusError",
    "BaseChatModel",
    "ChatAnthropic",
    "ChatModelError",
    "ChatOpenAI",
    "MalformedResponseError",
    "MissingAPIKeyError",
    "OutputParserError",
    "RateLimitError",
    "ScriptExhaustedError",
    "ScriptedChatModel",
    "StructuredOutputModel",
    "init_chat_model",
)

"""Chat models: the protocol (`BaseChatModel`), a scripted model for tests and examples, and provider clients."""

from graphrt.models._base import BaseChatModel
from graphrt.models._schema import OutputParserError
from graphrt.models._scripted import ScriptedChatModel, ScriptExhaustedError
from graphrt.models._structured import StructuredOutputModel

__all__ = ("BaseChatModel", "OutputParserError", "ScriptExhaustedError", "ScriptedChatModel", "StructuredOutputModel")

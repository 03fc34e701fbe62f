"""Channels: the typed slots that hold graph state between supersteps."""

from graphrt.channels.any_value import AnyValue
from graphrt.channels.base import BaseChannel
from graphrt.channels.binop import BinaryOperatorAggregate
from graphrt.channels.ephemeral_value import EphemeralValue
from graphrt.channels.last_value import LastValue, LastValueAfterFinish
from graphrt.channels.named_barrier_value import NamedBarrierValue, NamedBarrierValueAfterFinish
from graphrt.channels.topic import Topic
from graphrt.channels.untracked_value import UntrackedValue

__all__ = (
    "AnyValue",
    "BaseChannel",
    "BinaryOperatorAggregate",
    "EphemeralValue",
    "LastValue",
    "LastValueAfterFinish",
    "NamedBarrierValue",
    "NamedBarrierValueAfterFinish",
    "Topic",
    "UntrackedValue",
)

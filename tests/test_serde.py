"""The checkpoint serializer: round-trip laws, escaping, errors at write time, safe loading."""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import pathlib
import pickle
import re
from collections import OrderedDict, deque
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Generic, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

import graphrt.checkpoint.serde as serde_package
import graphrt.checkpoint.serde.base as base_module
import graphrt.checkpoint.serde.jsonplus as jsonplus_module
import graphrt.checkpoint.serde.types as types_module
from graphrt.checkpoint.serde.base import (
    DeserializationError,
    SerializationError,
    SerializerCompat,
    SerializerProtocol,
    maybe_add_typed_methods,
)
from graphrt.checkpoint.serde.jsonplus import JsonPlusSerializer, register_type
from graphrt.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from graphrt.store.base import Item, SearchItem
from graphrt.types import Command, Interrupt, Overwrite, Send

pytestmark = pytest.mark.timeout(60)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SERDE = JsonPlusSerializer()

HOW_TO_FIX = (
    "Register it with graphrt.checkpoint.serde.jsonplus.register_type(), make it a dataclass or a "
    "pydantic model, or opt into pickle with JsonPlusSerializer(pickle_fallback=True)."
)


# --- types used by the tests (module level, so they are importable by path) ---


T = TypeVar("T")


class Color(enum.Enum):
    RED = 1
    GREEN = "green"
    BLUE = (1, 2)


class Mood(enum.StrEnum):
    HAPPY = "happy"
    SAD = "sad"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Perm(enum.Flag):
    R = 1
    W = 2
    X = 4


@dataclasses.dataclass
class Point:
    x: int
    y: Any = None
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True, slots=True)
class FrozenPair:
    left: Any
    right: Any = ()


@dataclasses.dataclass
class Doubling:
    """`__post_init__` doubles `n`: loading must not run it again."""

    n: int

    def __post_init__(self) -> None:
        self.n *= 2


class Pos(NamedTuple):
    lat: float
    lon: float = 0.0


class Profile(BaseModel):
    name: str
    tags: tuple[str, ...] = ()
    score: Decimal | None = None
    seen: datetime | None = None
    data: Any = None
    extra_info: dict[str, Any] = Field(default_factory=dict)


class Page(BaseModel, Generic[T]):
    items: list[T]


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow")

    a: int = 0


class WithPrivate(BaseModel):
    a: int = 0
    _secret: str = PrivateAttr(default="none")


class FrozenModel(BaseModel):
    model_config = ConfigDict(frozen=True)

    value: Any


@dataclasses.dataclass
class Marked:
    """A dataclass with a field named like the tag marker."""

    x: Any
    __gr__: Any = None


class Unknown:
    """A plain class: not serializable unless registered or pickled."""

    def __eq__(self, other: object) -> bool:
        return type(other) is Unknown

    def __hash__(self) -> int:
        return 0


class Trap:
    """A plain class whose construction must never be triggered by loading."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("loading called a constructor it should not have")


class Money:
    """A type taught to the serializer with `register_type`."""

    def __init__(self, amount: Decimal, currency: str) -> None:
        self.amount = amount
        self.currency = currency

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Money) and (self.amount, self.currency) == (other.amount, other.currency)

    def __hash__(self) -> int:
        return hash((self.amount, self.currency))


register_type(
    Money,
    to_json=lambda m: (m.amount, m.currency),
    from_json=lambda v: Money(*v),
    tag="tests.Money",
)


# --- a structural fingerprint: equal only if values AND exact types match everywhere ---


def fp(x: Any) -> Any:
    t = type(x)
    if t in (list, tuple) or (isinstance(x, tuple) and hasattr(x, "_fields")):
        return (t, tuple(fp(e) for e in x))
    if t is deque:
        return (t, tuple(fp(e) for e in x), x.maxlen)
    if t in (set, frozenset):
        return (t, frozenset(fp(e) for e in x))
    if t in (dict, OrderedDict):
        return (t, tuple((fp(k), fp(v)) for k, v in x.items()))
    if isinstance(x, BaseModel):
        return (
            t,
            fp(x.__dict__),
            fp(x.__pydantic_extra__),
            frozenset(x.model_fields_set),
            fp(x.__pydantic_private__),
        )
    if dataclasses.is_dataclass(x):
        return (t, tuple((f.name, fp(getattr(x, f.name))) for f in dataclasses.fields(x)))
    if t is Send:
        return (t, x.node, fp(x.arg))
    if t is Interrupt:
        return (t, fp(x.value), x.id)
    if t is Command:
        return (t, x.graph, fp(x.update), fp(x.resume), fp(x.goto))
    if t is Money:
        return (t, repr(x.amount), x.currency)
    return (t, repr(x))


def roundtrip(value: Any, serde: JsonPlusSerializer = SERDE) -> Any:
    return serde.loads_typed(serde.dumps_typed(value))


def assert_roundtrips(value: Any, serde: JsonPlusSerializer = SERDE) -> None:
    assert fp(roundtrip(value, serde)) == fp(value)


# --- strategies ---

text = st.text(max_size=12)
zones = st.one_of(
    st.none(),
    st.just(UTC),
    st.builds(timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))),
    st.timezones(),
)
hashable_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**62, max_value=2**80),
    st.integers(min_value=-(2**80), max_value=-(2**62)),
    st.floats(),
    text,
    st.binary(max_size=12),
    st.datetimes(timezones=zones),
    st.dates(),
    st.times(timezones=zones),
    st.timedeltas(),
    st.decimals(allow_nan=False),
    st.uuids(),
    st.sampled_from([*Color, *Mood, *Level, Perm.R | Perm.W, Perm.X]),
    st.complex_numbers(),
    st.builds(pathlib.PurePosixPath, text),
    st.ip_addresses(),
    st.builds(Money, st.decimals(allow_nan=False), text),
    st.builds(Pos, st.floats(), st.floats()),
    st.builds(FrozenPair, text, st.integers()),
)
hashables = st.recursive(
    hashable_leaves,
    lambda inner: st.one_of(st.tuples(inner, inner), st.frozensets(inner, max_size=3)),
    max_leaves=6,
)
messages = st.one_of(
    st.builds(HumanMessage, text, id=st.none() | text),
    st.builds(SystemMessage, text),
    st.builds(
        AIMessage,
        text,
        id=text,
        tool_calls=st.lists(
            st.fixed_dictionaries({"name": text, "args": st.dictionaries(text, st.integers()), "id": text}),
            max_size=2,
        ),
    ),
    st.builds(ToolMessage, text, tool_call_id=text, artifact=st.none() | st.integers() | st.tuples(text)),
    st.builds(lambda c, x: HumanMessage(c, mood=x), text, st.sampled_from(list(Mood))),
)


def containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(text | st.sampled_from(["__gr__", "v"]), inner, max_size=4),
        st.dictionaries(hashables, inner, max_size=3),
        st.sets(hashables, max_size=3),
        st.builds(deque, st.lists(inner, max_size=3), st.none() | st.integers(3, 5)),
        st.builds(Point, st.integers(), inner, st.lists(text, max_size=2)),
        st.builds(FrozenPair, inner, inner),
        st.builds(Profile, name=text, tags=st.tuples(text), data=inner),
        st.builds(lambda a, v: Loose(a=a, free=v), st.integers(), inner),
        st.builds(lambda v, w: Loose(**{"__gr__": v, "t": w}), inner, inner),
        st.builds(Marked, inner, inner),
        st.builds(Send, text, inner),
        st.builds(Interrupt, inner, text),
        st.builds(Command, update=inner, goto=st.tuples(text) | st.lists(st.builds(Send, text, inner))),
        st.builds(Overwrite, inner),
    )


values = st.recursive(
    st.one_of(hashables, st.decimals(), st.binary().map(bytearray), messages), containers, max_leaves=20
)


# --- laws ---


@settings(FAST, max_examples=300)
@given(values)
def test_every_supported_value_round_trips_with_its_exact_types(value: Any) -> None:
    assert_roundtrips(value)


@FAST
@given(st.dictionaries(st.sampled_from(["__gr__", "v", "x"]), values, max_size=3))
def test_dicts_holding_the_tag_marker_round_trip_as_dicts(value: dict[str, Any]) -> None:
    assert_roundtrips(value)


@pytest.mark.parametrize(
    "value",
    [
        {"__gr__": "tuple", "v": [1, 2]},
        {"__gr__": "dc:os:system", "v": {}},
        [{"__gr__": "int", "v": "12"}],
        {"a": {"__gr__": {"__gr__": "set"}}},
        "__gr__",
        {"__gr__": "x"},
    ],
)
def test_data_that_looks_like_a_tag_stays_data(value: Any) -> None:
    assert_roundtrips(value)


@FAST
@given(st.dictionaries(st.sampled_from([*Mood, *Level, True, 1.5, None]) | hashables, st.integers(), max_size=4))
def test_dicts_with_non_str_keys_round_trip(value: dict[Any, int]) -> None:
    assert_roundtrips(value)


def test_str_and_int_subclasses_keep_their_types_as_keys_and_values() -> None:
    value = {Mood.HAPPY: Level.HIGH, Level.LOW: Mood.SAD, "plain": 1, 1: "one", (1, "a"): frozenset({2})}
    assert_roundtrips(value)


@FAST
@given(st.lists(messages, max_size=5))
def test_messages_round_trip_with_fields_set_and_extras(value: list[BaseMessage]) -> None:
    assert_roundtrips(value)


# --- specific behaviours ---


def test_type_strings_for_plain_values() -> None:
    assert SERDE.dumps_typed(None) == ("null", b"")
    assert SERDE.dumps_typed(b"\x00raw") == ("bytes", b"\x00raw")
    assert SERDE.dumps_typed(bytearray(b"ab")) == ("bytearray", b"ab")
    assert SERDE.dumps_typed({"a": [1, 2.5, "x", None, True]}) == ("json", b'{"a":[1,2.5,"x",null,true]}')
    assert type(SERDE.loads_typed(("bytearray", b"ab"))) is bytearray


def test_stored_json_is_compact_and_readable() -> None:
    value = {"t": (1, "a"), "m": HumanMessage("hi", id="1"), "when": date(2024, 1, 2)}
    assert SERDE.dumps_typed(value) == (
        "json",
        b'{"t":{"__gr__":"tuple","v":[1,"a"]},'
        b'"m":{"__gr__":"msg:HumanMessage","v":{"content":"hi","id":"1"}},'
        b'"when":{"__gr__":"date","v":"2024-01-02"}}',
    )


def test_special_floats_and_huge_ints_keep_their_values() -> None:
    out = roundtrip([float("nan"), float("inf"), -float("inf"), -0.0, 2**64, -(2**63) - 1, 2**64 - 1])
    assert repr(out) == repr([float("nan"), float("inf"), -float("inf"), -0.0, 2**64, -(2**63) - 1, 2**64 - 1])


def test_zoned_datetimes_keep_zone_and_fold() -> None:
    ny = ZoneInfo("America/New_York")
    second = datetime(2021, 11, 7, 1, 30, tzinfo=ny, fold=1)  # the repeated hour after DST ends
    out = roundtrip([second, second.replace(fold=0), datetime(2020, 1, 1, fold=1), time(1, 2, tzinfo=ny)])
    assert out[0].tzinfo is ny and out[0].fold == 1 and out[0].utcoffset() == timedelta(hours=-5)
    assert out[1].utcoffset() == timedelta(hours=-4)
    assert out[2].fold == 1
    assert out[3].tzinfo is ny


def test_other_tzinfo_implementations_keep_the_instant_as_a_fixed_offset() -> None:
    class Plus2(timezone.__base__):  # type: ignore[misc, name-defined]
        def utcoffset(self, dt: datetime | None) -> timedelta:
            return timedelta(hours=2)

        def dst(self, dt: datetime | None) -> timedelta:
            return timedelta(0)

        def tzname(self, dt: datetime | None) -> str:
            return "P2"

    value = datetime(2024, 5, 1, 12, tzinfo=Plus2())
    out = roundtrip(value)
    assert out == value and out.tzinfo == timezone(timedelta(hours=2))


def test_standard_library_extras_round_trip() -> None:
    value = [
        deque([1, (2,)], maxlen=4),
        OrderedDict([(1, "a"), ("b", 2)]),
        pathlib.PurePosixPath("/a/b"),
        pathlib.Path("/tmp/x"),
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_interface("::1/128"),
        re.compile(r"a+b", re.IGNORECASE),
        re.compile(rb"\d"),
        complex(1, float("inf")),
        "\ud800 lone surrogate",
        {"\udfff": 1},
    ]
    out = roundtrip(value)
    assert fp(out[:8]) == fp(value[:8])
    assert repr(out[8:]) == repr(value[8:])


def test_fields_and_extras_named_like_the_marker_round_trip() -> None:
    assert_roundtrips([Marked((1,), (2,)), Loose(a=1, **{"__gr__": (1, 2), "t": {3}})])


def test_reference_cycles_fail_clearly() -> None:
    cycle: list[Any] = [1]
    cycle.append(cycle)
    with pytest.raises(ValueError) as info:
        SERDE.dumps_typed(cycle)
    assert str(info.value) == (
        "Cannot serialize a value that contains itself (a reference cycle) or is nested hundreds of levels "
        "deep; break the cycle, or opt into pickle with JsonPlusSerializer(pickle_fallback=True)."
    )
    out = roundtrip(cycle, JsonPlusSerializer(pickle_fallback=True))
    assert out[1] is out


def test_deep_nesting_round_trips() -> None:
    value: Any = "leaf"
    for i in range(200):
        value = [value] if i % 2 else (value,)
    assert_roundtrips(value)


def test_dataclasses_are_rebuilt_without_running_init() -> None:
    value = Doubling(3)
    assert value.n == 6
    assert roundtrip(value).n == 6


def test_pydantic_models_keep_private_state_and_are_not_revalidated() -> None:
    model = WithPrivate(a=1)
    model._secret = "s3"
    assert roundtrip(model)._secret == "s3"
    assert roundtrip(WithPrivate())._secret == "none"
    frozen = FrozenModel(value=(1, {2}))
    assert fp(roundtrip(frozen)) == fp(frozen)


def test_parametrized_generic_models_load_as_their_origin_class() -> None:
    out = roundtrip(Page[int](items=[1, 2]))
    assert type(out) is Page and out == Page[int](items=[1, 2]) and out.items == [1, 2]


def test_schema_evolution_fills_defaults_of_fields_added_later() -> None:
    payload = b'{"__gr__":"dc:%s:Point","v":{"x":1}}' % Point.__module__.encode()
    assert SERDE.loads_typed(("json", payload)) == Point(1)
    payload = b'{"__gr__":"pyd:%s:Profile","v":{"name":"n","gone":1}}' % Profile.__module__.encode()
    assert SERDE.loads_typed(("json", payload)) == Profile(name="n")
    payload = b'{"__gr__":"nt:%s:Pos","v":[1.5]}' % Pos.__module__.encode()
    assert SERDE.loads_typed(("json", payload)) == Pos(1.5, 0.0)


def test_numpy_arrays_and_scalars_round_trip() -> None:
    value = [
        np.arange(6, dtype=np.int16).reshape(2, 3),
        np.array([[1.5, np.nan]], dtype=">f8"),
        np.array(["a", "bc"]),
        np.array([True, False]),
        np.array(["2024-01-01"], dtype="datetime64[D]"),
        np.zeros((0, 2)),
        np.float32(1.25),
        np.int64(-3),
        np.bool_(True),
    ]
    out = roundtrip(value)
    for before, after in zip(value, out, strict=True):
        assert type(after) is type(before) and after.dtype == before.dtype
        assert after.tobytes() == before.tobytes() and after.shape == before.shape
    assert out[0].flags.writeable


def test_object_arrays_are_refused() -> None:
    with pytest.raises(SerializationError) as info:
        SERDE.dumps_typed({"a": np.array([object()])})
    assert str(info.value) == (
        "Type is not serializable: numpy.ndarray (found at ['a']). Only numpy values of plain numeric, bool, "
        "text or date dtypes can be stored, not object; convert it (e.g. with .tolist()) or opt into pickle "
        "with JsonPlusSerializer(pickle_fallback=True)."
    )
    with pytest.raises(DeserializationError) as err:
        SERDE.loads_typed(crafted("ndarray", ["|O", [1], "AAAAAAAAAAA="]))
    assert str(err.value) == (
        "Cannot load a value tagged 'ndarray': its payload is invalid (ValueError: dtype '|O' is not a plain dtype)."
    )


def test_store_items_round_trip() -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    item = Item(value={"a": (1,)}, key="k", namespace=("users", "1"), created_at=when, updated_at=when)
    found = SearchItem(("n",), "k", {"b": 2}, when, when, score=0.5)
    out = roundtrip([item, found])
    assert out == [item, found]
    assert type(out[1]) is SearchItem and out[1].score == 0.5 and out[0].value == {"a": (1,)}


def test_exceptions_are_stored_as_their_repr_like_langgraph() -> None:
    assert roundtrip({"error": ValueError("boom")}) == {"error": "ValueError('boom')"}


def test_send_interrupt_and_command_round_trip() -> None:
    value = [
        Send("node", {"x": (1, 2)}),
        Interrupt({"question": "ok?"}, id="abc"),
        Interrupt("n?", id="def", response_schema={"type": "integer"}),
        Command(graph=Command.PARENT, update={"k": 1}, resume={"abc": "yes"}, goto=[Send("n", 1), "m"]),
        Command(goto="next"),
        Command(),
    ]
    assert_roundtrips(value)


def test_registered_types_round_trip_by_their_tag() -> None:
    value = {"price": Money(Decimal("9.99"), "EUR")}
    kind, data = SERDE.dumps_typed(value)
    assert (
        data
        == b'{"price":{"__gr__":"reg:tests.Money","v":{"__gr__":"tuple","v":[{"__gr__":"decimal","v":"9.99"},"EUR"]}}}'
    )
    assert SERDE.loads_typed((kind, data)) == value


def test_json_native_types_cannot_be_registered() -> None:
    with pytest.raises(ValueError, match=r"^str is stored as plain JSON already; it cannot be registered\.$"):
        register_type(str, to_json=str, from_json=str)


# --- unknown types fail at write time, clearly ---


def test_unknown_type_fails_at_write_time_naming_type_and_place() -> None:
    with pytest.raises(SerializationError) as info:
        SERDE.dumps_typed({"a": [1, Unknown()]})
    name = f"{Unknown.__module__}.Unknown"
    assert str(info.value) == f"Type is not serializable: {name} (found at ['a'][1]). {HOW_TO_FIX}"
    assert info.value.type_name == name
    assert info.value.path == "['a'][1]"
    assert isinstance(info.value, TypeError)


@pytest.mark.parametrize(
    ("value", "path"),
    [
        (Unknown(), ""),
        ((1, Unknown()), "[1]"),
        (Point(1, y={"k": Unknown()}), ".y['k']"),
        (Loose(a=1, other=[Unknown()]), ".other[0]"),
        ({Unknown(): 1}, " (key {!r})"),
        (lambda: 1, ""),
        (Send("n", {"a": Unknown()}), ".arg['a']"),
        (Command(update=[Unknown()]), ".update[0]"),
    ],
)
def test_the_error_path_points_into_the_value(value: Any, path: str) -> None:
    with pytest.raises(SerializationError) as info:
        SERDE.dumps_typed(value)
    expected = path.format(*(k for k in value) if isinstance(value, dict) else ())
    assert info.value.path == expected


def test_builtin_unknown_types_are_named_without_module() -> None:
    with pytest.raises(SerializationError) as info:
        SERDE.dumps_typed([print])
    assert info.value.type_name == "builtin_function_or_method"
    assert str(info.value) == f"Type is not serializable: builtin_function_or_method (found at [0]). {HOW_TO_FIX}"


def test_classes_defined_in_functions_fail_at_write_time() -> None:
    @dataclasses.dataclass
    class Local:
        x: int

    with pytest.raises(SerializationError) as info:
        SERDE.dumps_typed({"v": Local(1)})
    name = f"{Local.__module__}.{Local.__qualname__}"
    assert str(info.value) == (
        f"Type is not serializable: {name} (found at ['v']). It is defined inside a function, so it could "
        "not be imported again to load the checkpoint; define it at module level, or register it with "
        "graphrt.checkpoint.serde.jsonplus.register_type()."
    )


class ChannelError(SerializationError):
    """A subclass with its own signature, as a saver may define."""

    def __init__(self, channel: str, type_name: str) -> None:
        self.channel = channel
        super().__init__(type_name)


def test_errors_survive_pickling_with_subclass_and_fields() -> None:
    err = SerializationError("a.B", path="[0]")
    clone = pickle.loads(pickle.dumps(err))
    assert (type(clone), clone.type_name, clone.path, str(clone)) == (SerializationError, "a.B", "[0]", str(err))
    sub = pickle.loads(pickle.dumps(ChannelError("ch", "a.B")))
    assert (type(sub), sub.channel, sub.type_name, str(sub)) == (
        ChannelError,
        "ch",
        "a.B",
        str(ChannelError("ch", "a.B")),
    )
    bad = pickle.loads(pickle.dumps(DeserializationError("t", "why.")))
    assert (bad.tag, str(bad)) == ("t", "Cannot load a value tagged 't': why.")


# --- pickle is opt-in ---


def test_pickle_only_when_opted_in() -> None:
    value = {"u": Unknown(), "t": (1,)}
    with pytest.raises(SerializationError):
        SERDE.dumps_typed(value)
    permissive = JsonPlusSerializer(pickle_fallback=True)
    kind, data = permissive.dumps_typed(value)
    assert kind == "pickle"
    assert permissive.loads_typed((kind, data)) == value
    assert permissive.dumps_typed({"t": (1,)})[0] == "json"  # supported values never pickle
    with pytest.raises(NotImplementedError) as info:
        SERDE.loads_typed((kind, data))
    assert str(info.value) == (
        "Unknown serialization type: pickle. Pickled values are loaded only by "
        "JsonPlusSerializer(pickle_fallback=True); enable it only if you trust everyone who can write "
        "to the checkpoint database."
    )


def test_unknown_type_strings_are_refused() -> None:
    with pytest.raises(NotImplementedError, match=r"^Unknown serialization type: msgpack\.$"):
        SERDE.loads_typed(("msgpack", b"\x80"))


# --- loading never executes what stored data names ---


def crafted(tag: str, payload: Any = None) -> tuple[str, bytes]:
    return "json", orjson.dumps({"__gr__": tag, "v": payload})


@pytest.mark.parametrize(
    ("tag", "problem"),
    [
        ("dc:os:system", "os.system is not a class; only classes are rebuilt from stored data."),
        ("pyd:os:system", "os.system is not a class; only classes are rebuilt from stored data."),
        (
            "dc:subprocess:Popen",
            "subprocess.Popen is not a dataclass, so graphrt refuses to rebuild it from stored data.",
        ),
        ("enum:builtins:eval", "builtins.eval is not a class; only classes are rebuilt from stored data."),
        ("nt:builtins:object", "object is not a named tuple, so graphrt refuses to rebuild it from stored data."),
        ("pyd:{mod}:Trap", "{mod}.Trap is not a pydantic model, so graphrt refuses to rebuild it from stored data."),
        (
            "msg:convert_to_messages",
            "graphrt.messages.convert_to_messages is not a class; only classes are rebuilt from stored data.",
        ),
        ("msg:BaseModel", "'BaseModel' is not a message class of graphrt.messages."),
        (
            "dc:no_such_module_for_graphrt:Thing",
            "module 'no_such_module_for_graphrt' cannot be imported (ModuleNotFoundError: No module named "
            "'no_such_module_for_graphrt'); install the code that defines the class.",
        ),
        ("dc:os:no_such_name", "module 'os' has no attribute 'no_such_name'."),
        ("dc:os", "the tag does not name a class as 'module:QualName'."),
        (
            "reg:nobody.registered.this",
            "no type is registered under this tag; call register_type() for it before loading.",
        ),
        ("frobnicate", "unknown tag; the value may have been written by a newer graphrt."),
    ],
)
def test_crafted_tags_are_refused(tag: str, problem: str) -> None:
    tag = tag.format(mod=__name__)
    with pytest.raises(DeserializationError) as info:
        SERDE.loads_typed(crafted(tag, {"a": 1}))
    assert str(info.value) == f"Cannot load a value tagged {tag!r}: {problem.format(mod=__name__)}"
    assert info.value.tag == tag


@pytest.mark.parametrize(
    ("data", "tag", "problem"),
    [
        (b'{"__gr__":"tuple"}', "tuple", "its payload is invalid (TypeError: 'NoneType' object is not iterable)."),
        (
            b'{"__gr__":"float","v":"1e400"}',
            "float",
            "its payload is invalid (ValueError: '1e400' is not nan, inf or -inf).",
        ),
        (b'{"__gr__":"dict","v":[[[1],2]]}', "dict", "its payload is invalid (TypeError: unhashable type: 'list')."),
    ],
)
def test_malformed_payloads_are_reported_with_their_tag(data: bytes, tag: str, problem: str) -> None:
    with pytest.raises(DeserializationError) as info:
        SERDE.loads_typed(("json", data))
    assert str(info.value) == f"Cannot load a value tagged {tag!r}: {problem}"


def test_a_non_string_tag_is_refused() -> None:
    with pytest.raises(DeserializationError, match=r"^Cannot load a value tagged '\[1\]': the tag is not a string"):
        SERDE.loads_typed(("json", b'{"__gr__":[1],"v":2}'))


def test_enum_values_outside_the_enum_are_refused() -> None:
    tag = f"enum:{__name__}:Color"
    with pytest.raises(DeserializationError) as info:
        SERDE.loads_typed(crafted(tag, 99))
    assert str(info.value) == f"Cannot load a value tagged {tag!r}: 99 is not a member of {__name__}.Color."


def test_allowlist_restricts_classes_rebuilt_by_path() -> None:
    strict = JsonPlusSerializer(allowed_msgpack_modules=None)
    data = SERDE.dumps_typed([Point(1), HumanMessage("hi"), Overwrite(1)])
    with pytest.raises(DeserializationError) as info:
        strict.loads_typed(data)
    assert str(info.value) == (
        f"Cannot load a value tagged 'dc:{__name__}:Point': the class is not in this serializer's "
        f"allowed_msgpack_modules; add ({__name__!r}, 'Point') to it to load this value."
    )
    assert strict.with_msgpack_allowlist([Point]).loads_typed(data) == [Point(1), HumanMessage("hi"), Overwrite(1)]
    assert JsonPlusSerializer(allowed_msgpack_modules=[(__name__, "Point")]).loads_typed(data)[0] == Point(1)
    assert SERDE.with_msgpack_allowlist([Point]) is SERDE


# --- protocol and surface ---


def test_protocols_and_compat_wrapper() -> None:
    assert isinstance(SERDE, SerializerProtocol)

    class Untyped:
        def dumps(self, obj: Any) -> bytes:
            return repr(obj).encode()

        def loads(self, data: bytes) -> Any:
            return data.decode()

    wrapped = maybe_add_typed_methods(Untyped())
    assert isinstance(wrapped, SerializerCompat)
    assert wrapped.dumps_typed(1) == ("int", b"1")
    assert wrapped.loads_typed(("int", b"1")) == "1"
    assert maybe_add_typed_methods(SERDE) is SERDE


def test_public_surface() -> None:
    for module, names in [
        (serde_package, ("JsonPlusSerializer", "SerializerProtocol", "SerializationError")),
        (base_module, ("SerializerProtocol", "SerializationError", "maybe_add_typed_methods")),
        (jsonplus_module, ("JsonPlusSerializer", "register_type")),
        (types_module, ("ERROR", "INTERRUPT", "RESUME", "SCHEDULED", "TASKS", "SendProtocol")),
    ]:
        assert isinstance(module.__all__, tuple)
        for name in names:
            assert name in module.__all__ and hasattr(module, name)
    assert types_module.TASKS == "__pregel_tasks"
    assert isinstance(Send("a", 1), types_module.SendProtocol)

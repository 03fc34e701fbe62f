"""`graphrt import-langgraph`: threads and store items of a database LangGraph wrote, continued on graphrt.

The source is the committed fixture (made by `make_langgraph_db.py` with LangGraph 1.2), and, when a
Python with LangGraph is named by `LG_PYTHON`, a database that LangGraph writes during the test.
"""

from __future__ import annotations

import datetime
import json
import operator
import os
import shutil
import sqlite3
import struct
import subprocess
import uuid
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.checkpoint.sqlite import SqliteSaver
from graphrt.graph import END, START, MessagesState, StateGraph
from graphrt.store.sqlite import SqliteStore
from graphrt.types import Command, Send, interrupt
from tests.cli.conftest import run_cli

HERE = Path(__file__).parent
FIXTURE = HERE / "data" / "langgraph.sqlite"
FANOUT = HERE / "data" / "langgraph_fanout.sqlite"


class State(MessagesState):
    notes: Annotated[list[str], operator.add]
    when: datetime.datetime
    tags: set[str]
    ident: uuid.UUID


def chat(state: State) -> dict[str, Any]:
    raise AssertionError("chat already ran on LangGraph")


def tool(state: State) -> dict[str, Any]:
    raise AssertionError("tool already ran on LangGraph")


def ask(state: State) -> dict[str, Any]:
    answer = interrupt({"question": "ok?"})
    return {"notes": [f"answer:{answer}"]}


def graphrt_graph(saver: SqliteSaver) -> Any:
    """The graph `make_langgraph_db.py` runs, on graphrt (only `ask` may still run)."""
    builder = StateGraph(State)
    builder.add_node(chat)
    builder.add_node(tool)
    builder.add_node(ask)
    builder.add_edge(START, "chat")
    builder.add_edge("chat", "tool")
    builder.add_edge("tool", "ask")
    builder.add_edge("ask", END)
    return builder.compile(checkpointer=saver)


@pytest.fixture(params=["fixture", "langgraph"])
def sources(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """The chat and fan-out LangGraph databases: the committed ones, or ones LangGraph writes now."""
    chat, fan = tmp_path / "langgraph.sqlite", tmp_path / "langgraph_fanout.sqlite"
    if request.param == "fixture":
        shutil.copy(FIXTURE, chat)
        shutil.copy(FANOUT, fan)
        return str(chat), str(fan)
    python = os.environ.get("LG_PYTHON")
    if not python:
        pytest.skip("set LG_PYTHON to a Python with langgraph and langgraph-checkpoint-sqlite to write one now")
    subprocess.run([python, str(HERE / "make_langgraph_db.py"), str(chat), str(fan)], check=True, timeout=120)
    return str(chat), str(fan)


@pytest.fixture
def source(sources: tuple[str, str]) -> str:
    return sources[0]


def source_rows(path: str, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def test_import_keeps_every_checkpoint_its_parent_metadata_and_writes(source: str, tmp_path: Path) -> None:
    dst = str(tmp_path / "graphrt.sqlite")
    result = run_cli("import-langgraph", source, dst, "--yes", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == {
        "threads": ["t-1", "t-2", "t-3"],
        "skipped_threads": [],
        "checkpoints": 14,
        "writes": len(source_rows(source, "SELECT * FROM writes")),
        "store_items": 2,
    }
    assert result.err == "[1/3] imported t-1\n[2/3] imported t-2\n[3/3] imported t-3\n"
    expected = source_rows(
        source, "SELECT thread_id, checkpoint_id, parent_checkpoint_id, metadata FROM checkpoints ORDER BY 1, 2 DESC"
    )
    with SqliteSaver.from_conn_string(dst) as saver:
        got = [
            (
                t.config["configurable"]["thread_id"],
                t.config["configurable"]["checkpoint_id"],
                t.parent_config["configurable"]["checkpoint_id"] if t.parent_config else None,
                t.metadata,
            )
            for thread_id in ("t-1", "t-2", "t-3")
            for t in saver.list({"configurable": {"thread_id": thread_id}})
        ]
    assert got == [(t, c, p, json.loads(m)) for t, c, p, m in expected]
    threads = json.loads(run_cli("threads", dst, "--json").out)
    assert [(t["thread_id"], t["checkpoints"], t["last_step"]) for t in threads] == [
        ("t-3", 5, 3),
        ("t-2", 4, 2),
        ("t-1", 5, 3),
    ]
    with SqliteStore.from_conn_string(dst) as store:
        assert [(i.namespace, i.key, i.value) for i in store.search(("users",))] == [
            (("users", "u2"), "prefs", {"theme": "light"}),
            (("users", "u1"), "prefs", {"theme": "dark", "n": 3}),
        ]


def test_an_imported_interrupted_thread_resumes_on_graphrt_as_on_langgraph(source: str, tmp_path: Path) -> None:
    dst = str(tmp_path / "graphrt.sqlite")
    assert run_cli("import-langgraph", source, dst, "--yes", "--quiet").code == 0
    with SqliteSaver.from_conn_string(dst) as saver:
        graph = graphrt_graph(saver)
        waiting = graph.get_state({"configurable": {"thread_id": "t-2"}})
        assert waiting.next == ("ask",)
        assert [i.value for i in waiting.interrupts] == [{"question": "ok?"}]
        graph.invoke(Command(resume="yes"), {"configurable": {"thread_id": "t-2"}})
        resumed = graph.get_state({"configurable": {"thread_id": "t-2"}}).values
        on_langgraph = graph.get_state({"configurable": {"thread_id": "t-3"}}).values  # same run, resumed by LangGraph
    assert resumed == on_langgraph
    assert [(type(m).__name__, m.content, m.id) for m in resumed["messages"]] == [
        ("HumanMessage", "Ann", "h2"),
        ("AIMessage", "hi Ann", "ai-1"),
        ("ToolMessage", "42", "tool-1"),
    ]
    assert resumed["messages"][1].tool_calls == [
        {"name": "lookup", "args": {"q": "x"}, "id": "call1", "type": "tool_call"}
    ]
    assert resumed["notes"] == ["chat", "answer:yes"]
    assert resumed["when"] == datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert resumed["tags"] == {"a"}
    assert resumed["ident"] == uuid.UUID(int=7)


def test_existing_threads_and_items_are_refused_or_skipped(tmp_path: Path) -> None:
    dst = str(tmp_path / "graphrt.sqlite")
    aborted = run_cli("import-langgraph", str(FIXTURE), dst, stdin="n\n")
    assert aborted.code == 1 and aborted.err.endswith(
        "graphrt: error: Aborted; nothing was changed (pass --yes to skip this question).\n"
    )
    assert not Path(dst).exists()  # no empty database left behind
    assert run_cli("import-langgraph", str(FIXTURE), dst, "--yes", "--quiet", "--thread", "t-1", "--no-store").code == 0
    again = run_cli("import-langgraph", str(FIXTURE), dst, "--yes")
    assert again.err == (
        f"graphrt: error: {dst} already has thread(s) 't-1'; pass --skip-existing to leave them alone "
        "(nothing was written)\n"
    )
    skipped = run_cli("import-langgraph", str(FIXTURE), dst, "--yes", "--quiet", "--skip-existing")
    writes = source_rows(str(FIXTURE), "SELECT COUNT(*) FROM writes WHERE thread_id <> 't-1'")[0][0]
    assert skipped.out == (
        f"Imported 2 thread(s), skipped 1 already there, 9 checkpoints, {writes} pending writes and 2 store item(s).\n"
    )
    items = run_cli(
        "import-langgraph", str(FIXTURE), str(tmp_path / "other.sqlite"), "--yes", "--quiet", "--thread", "t-9"
    )
    assert items.err == "graphrt: error: No thread 't-9' in the LangGraph database\n"


def test_source_must_be_a_langgraph_database(chat_db: str, tmp_path: Path) -> None:
    assert run_cli("import-langgraph", chat_db, str(tmp_path / "x.sqlite")).err == (
        f"graphrt: error: {chat_db} is not a LangGraph database (no 'checkpoints' and 'writes' tables). "
        "It is a graphrt database already.\n"
    )
    assert run_cli("import-langgraph", str(FIXTURE), str(FIXTURE)).err == (
        "graphrt: error: SRC and DST are the same database; write the graphrt copy to another file\n"
    )


# A few MessagePack encoders, enough to write the rows LangGraph writes for types graphrt does not know.
def pack(value: Any) -> bytes:
    if isinstance(value, str):
        data = value.encode()
        return (bytes([0xA0 | len(data)]) if len(data) < 32 else b"\xd9" + bytes([len(data)])) + data
    if isinstance(value, list):
        return bytes([0x90 | len(value)]) + b"".join(pack(v) for v in value)
    if isinstance(value, dict):
        return bytes([0x80 | len(value)]) + b"".join(pack(k) + pack(v) for k, v in value.items())
    if isinstance(value, int):
        return struct.pack(">Bq", 0xD3, value)
    raise TypeError(value)


def ext(code: int, *parts: Any) -> bytes:
    body = pack(list(parts))
    return b"\xc7" + bytes([len(body)]) + struct.pack(">b", code) + body


def add_write(path: str, channel: str, type_: str, value: bytes, task_id: str = "task-x") -> None:
    conn = sqlite3.connect(path)
    thread, ns, checkpoint = conn.execute(
        "SELECT thread_id, checkpoint_ns, checkpoint_id FROM checkpoints WHERE thread_id = 't-1' ORDER BY 3 LIMIT 1"
    ).fetchone()
    conn.execute(
        "INSERT INTO writes VALUES (?, ?, ?, ?, '', 0, ?, ?, ?)",
        (thread, ns, checkpoint, task_id, channel, type_, value),
    )
    conn.commit()
    conn.close()


def test_unknown_types_are_reported_by_name_and_nothing_is_written(tmp_path: Path) -> None:
    src = str(tmp_path / "lg.sqlite")
    shutil.copy(FIXTURE, src)
    add_write(
        src,
        "notes",
        "msgpack",
        pack([ext(0, "myapp.models", "Thing", "x").decode("latin-1")])[:0]
        + b"\x91"
        + ext(0, "myapp.models", "Thing", "x"),
    )
    add_write(src, "notes", "pickle", b"\x80\x04N.", task_id="task-y")
    dst = tmp_path / "graphrt.sqlite"
    result = run_cli("import-langgraph", src, str(dst), "--yes")
    assert result.code == 1
    lines = result.err.splitlines()
    assert (
        lines[0] == "graphrt: error: Cannot import: values of these types cannot be carried over (nothing was written):"
    )
    assert lines[1].startswith("  myapp.models.Thing: first in thread 't-1', write of task task-x to 'notes'")
    assert lines[2].startswith(
        "  pickle (LangGraph's pickle fallback; graphrt does not unpickle): first in thread 't-1'"
    )
    assert lines[3].startswith("Types of your own modules can be rebuilt with --allow-module PREFIX")
    assert not dst.exists()  # DST was not even created


def test_allowed_modules_rebuild_the_users_own_types(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cli_import_models.py").write_text(
        "import dataclasses\n\n@dataclasses.dataclass\nclass Thing:\n    name: str\n    n: int\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    src = str(tmp_path / "lg.sqlite")
    shutil.copy(FIXTURE, src)
    add_write(src, "notes", "msgpack", b"\x91" + ext(2, "cli_import_models", "Thing", {"name": "x", "n": 2}))
    dst = str(tmp_path / "graphrt.sqlite")
    refused = run_cli("import-langgraph", src, dst, "--yes")
    assert "cli_import_models.Thing: first in thread 't-1'" in refused.err
    done = run_cli("import-langgraph", src, dst, "--yes", "--quiet", "--allow-module", "cli_import_models")
    assert done.code == 0, done.err
    import cli_import_models  # type: ignore[import-not-found]

    with SqliteSaver.from_conn_string(dst) as saver:
        writes = [w for t in saver.list({"configurable": {"thread_id": "t-1"}}) for w in t.pending_writes or ()]
    assert ("task-x", "notes", [cli_import_models.Thing("x", 2)]) in writes


def test_langchain_json_format_and_standard_types_decode() -> None:
    from graphrt.cli._lgtypes import Converter
    from graphrt.messages import AIMessage, HumanMessage
    from graphrt.types import Interrupt, Send

    conv = Converter()
    old = {
        "lc": 1,
        "type": "constructor",
        "id": ["langchain", "schema", "messages", "HumanMessage"],
        "kwargs": {"content": "hi", "id": "m1"},
    }
    uid = {"lc": 2, "type": "constructor", "id": ["uuid", "UUID"], "method": None, "args": ["0" * 31 + "7"]}
    assert conv.loads_typed("json", json.dumps([old, uid]).encode()) == [HumanMessage("hi", id="m1"), uuid.UUID(int=7)]
    # Bytes LangGraph 1.2 wrote for these values (see make_langgraph_db.py's dumps_typed)
    assert conv.loads_typed("msgpack", b"\xc7\x1d\x01\x93\xaflanggraph.types\xa4Send\x92\xa1n\x81\xa1a\x01") == Send(
        "n", {"a": 1}
    )
    got = conv.loads_typed(
        "msgpack",
        b"\xc7>\x02\x93\xaflanggraph.types\xa9Interrupt\x83\xa5value\x81\xa1q\x01\xa2id\xa3abc\xafresponse_schema\xc0",
    )
    assert isinstance(got, Interrupt) and (got.value, got.id) == ({"q": 1}, "abc")
    assert conv.loads_typed(
        "msgpack", b"\xc7\x18\x01\x93\xa8datetime\xa9timedelta\x93\x01\x02\x03"
    ) == datetime.timedelta(1, 2, 3)
    assert conv.loads_typed(
        "msgpack", b"\xc7\x15\x01\x93\xa8datetime\xa4date\x93\xcd\x07\xe8\x01\x02"
    ) == datetime.date(2024, 1, 2)
    chunk = (
        b"\xc7\xe2\x05\x94\xbalangchain_core.messages.ai\xaeAIMessageChunk\x8b\xa7content\xa1x\xb1additional_kwargs"
        b"\x80\xb1response_metadata\x80\xa4type\xaeAIMessageChunk\xa4name\xc0\xa2id\xa2c1\xaatool_calls\x90\xb2"
        b"invalid_tool_calls\x90\xaeusage_metadata\xc0\xb0tool_call_chunks\x90\xaechunk_position\xc0\xb3"
        b"model_validate_json"
    )
    assert conv.loads_typed("msgpack", chunk) == AIMessage("x", id="c1")
    assert conv.loads_typed("null", b"") is None and conv.loads_typed("bytes", b"\x01") == b"\x01"
    assert conv.unknown == {}
    conv.loads_typed("msgpack", ext(6, "<i8", [1], "C", "raw"))
    assert list(conv.unknown) == ["numpy.ndarray"]


class FanState(TypedDict):
    results: Annotated[list[str], operator.add]
    answer: str


def test_a_half_finished_step_resumes_without_rerunning_its_finished_tasks(
    sources: tuple[str, str], tmp_path: Path
) -> None:
    dst = str(tmp_path / "graphrt.sqlite")
    assert run_cli("import-langgraph", sources[1], dst, "--yes", "--quiet").code == 0

    def fan_out(state: FanState) -> list[Any]:
        return [Send("work", "a"), Send("work", "b"), "gate"]

    def work(arg: str) -> dict[str, Any]:
        raise AssertionError("work already succeeded on LangGraph; its saved writes must be used")

    def gate(state: FanState) -> dict[str, Any]:
        return {"answer": interrupt("go?")}

    builder = StateGraph(FanState)
    builder.add_node(work)
    builder.add_node(gate)
    builder.add_conditional_edges(START, fan_out, ["work", "gate"])
    builder.add_edge("work", END)
    builder.add_edge("gate", END)
    with SqliteSaver.from_conn_string(dst) as saver:
        graph = builder.compile(checkpointer=saver)
        f1 = {"configurable": {"thread_id": "f-1"}}
        waiting = graph.get_state(f1)
        assert waiting.next == ("gate",)  # both "work" tasks count as done: their saved writes were matched
        assert [i.value for i in waiting.interrupts] == ["go?"]
        out = graph.invoke(Command(resume="yes"), f1)
        on_langgraph = graph.get_state({"configurable": {"thread_id": "f-2"}}).values
    assert out == on_langgraph == {"results": ["done:a", "done:b"], "answer": "yes"}


def test_import_from_langgraphs_postgres(tmp_path: Path) -> None:
    """Needs the `pg` test server (tests/_pg.py) and LangGraph's Postgres saver under `LG_PYTHON`."""
    pg = pytest.importorskip("tests._pg", reason="the PostgreSQL test server helper (tests/_pg.py) is not here")
    python = os.environ.get("LG_PYTHON")
    if not python:
        pytest.skip("set LG_PYTHON to a Python with langgraph-checkpoint-postgres to write LangGraph's tables")
    dst = str(tmp_path / "graphrt.sqlite")
    with pg.provide() as databases, databases.fresh() as dsn:
        subprocess.run([python, str(HERE / "make_langgraph_pg.py"), dsn], check=True, timeout=120)
        result = run_cli("import-langgraph", dsn, dst, "--yes", "--quiet")
    assert (result.code, result.err) == (0, "")
    assert result.out.startswith("Imported 2 thread(s), 9 checkpoints, ")
    assert result.out.endswith(" pending writes and 1 store item(s).\n")
    with SqliteSaver.from_conn_string(dst) as saver:
        graph = graphrt_graph(saver)
        graph.invoke(Command(resume="yes"), {"configurable": {"thread_id": "t-2"}})
        resumed = graph.get_state({"configurable": {"thread_id": "t-2"}}).values
        assert resumed == graph.get_state({"configurable": {"thread_id": "t-3"}}).values
    assert resumed["notes"] == ["chat", "answer:yes"]


def test_store_items_keep_their_time_to_live_and_expired_ones_stay_behind(tmp_path: Path) -> None:
    src = str(tmp_path / "lg.sqlite")
    shutil.copy(FIXTURE, src)
    conn = sqlite3.connect(src)
    conn.execute(
        "INSERT INTO store (prefix, key, value, expires_at, ttl_minutes) "
        "VALUES ('cache', 'fresh', '{\"v\": 1}', datetime('now', '+30 minutes'), 60)"
    )
    conn.execute(
        "INSERT INTO store (prefix, key, value, expires_at, ttl_minutes) "
        "VALUES ('cache', 'stale', '{\"v\": 2}', datetime('now', '-1 minutes'), 60)"
    )
    conn.commit()
    conn.close()
    dst = str(tmp_path / "graphrt.sqlite")
    done = run_cli("import-langgraph", src, dst, "--yes", "--quiet", "--json")
    assert json.loads(done.out)["store_items"] == 3
    with SqliteStore.from_conn_string(dst) as store:
        assert store.get(("cache",), "stale") is None
        fresh = store.get(("cache",), "fresh", refresh_ttl=False)
        assert fresh is not None and fresh.value == {"v": 1}
    ((minutes,),) = source_rows(dst, "SELECT ttl_minutes FROM graphrt_store WHERE key = 'fresh'")
    assert 29 < minutes <= 30  # what was left of it, so it expires when it would have on LangGraph

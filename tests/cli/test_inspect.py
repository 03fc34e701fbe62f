"""`graphrt threads/history/show/diff` on a database written by real graph runs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from graphrt.checkpoint.sqlite import SqliteSaver
from tests.cli.conftest import build_chat, run_cli


def history(path: str, thread_id: str) -> list:
    with SqliteSaver.from_conn_string(path) as saver:
        graph = build_chat().compile(checkpointer=saver)
        return list(graph.get_state_history({"configurable": {"thread_id": thread_id}}))


def test_threads_json_matches_each_threads_history(chat_db: str) -> None:
    result = run_cli("threads", chat_db, "--json")
    assert (result.code, result.err) == (0, "")
    got = json.loads(result.out)
    expected = []
    for thread_id, user in (("bob", "u2"), ("alice", "u1")):  # bob ran last: newest first
        snapshots = history(chat_db, thread_id)
        head = snapshots[0]
        expected.append(
            {
                "thread_id": thread_id,
                "checkpoints": len(snapshots),
                "last_step": head.metadata["step"],
                "updated_at": head.created_at,
                "size": got[len(expected)]["size"],
                "metadata": {"source": "loop", "step": head.metadata["step"], "parents": {}, "user": user},
            }
        )
    assert got == expected
    assert [t["checkpoints"] for t in got] == [3, 4]
    assert all(isinstance(t["size"], int) and t["size"] > 500 for t in got)


def test_threads_table_filter_and_limit(chat_db: str) -> None:
    result = run_cli("threads", chat_db, "--filter", "user=u1")
    lines = result.out.splitlines()
    assert lines[0].split() == ["THREAD", "CHECKPOINTS", "LAST", "STEP", "LAST", "UPDATE", "SIZE"]
    assert [line.split()[:3] for line in lines[1:]] == [["alice", "4", "2"]]
    assert "\x1b" not in result.out  # not a terminal: no colours
    assert json.loads(run_cli("threads", chat_db, "--json", "--limit", "1").out)[0]["thread_id"] == "bob"
    assert run_cli("threads", chat_db, "--filter", "user=nobody").out == "No threads.\n"
    bad = run_cli("threads", chat_db, "--filter", "user")
    assert (bad.code, bad.err) == (1, "graphrt: error: Bad --filter 'user': use KEY=VALUE, e.g. --filter user_id=u1\n")


def test_colours_only_on_a_terminal_or_when_asked(chat_db: str) -> None:
    assert run_cli("threads", chat_db, tty=True).out.startswith("\x1b[1mTHREAD")
    assert "\x1b" not in run_cli("threads", chat_db, "--color", "never", tty=True).out
    assert run_cli("threads", chat_db, "--color", "always").out.startswith("\x1b[1mTHREAD")


def test_history_json_matches_get_state_history(chat_db: str) -> None:
    for thread_id in ("alice", "bob"):
        got = json.loads(run_cli("history", chat_db, thread_id, "--json").out)
        snapshots = history(chat_db, thread_id)
        assert [e["checkpoint_id"] for e in got] == [s.config["configurable"]["checkpoint_id"] for s in snapshots]
        assert [e["parent_id"] for e in got] == [
            s.parent_config["configurable"]["checkpoint_id"] if s.parent_config else None for s in snapshots
        ]
        assert [(e["step"], e["source"], e["created_at"]) for e in got] == [
            (s.metadata["step"], s.metadata["source"], s.created_at) for s in snapshots
        ]
        assert [e["next"] for e in got] == [sorted(s.next) for s in snapshots]
        assert [e["interrupts"] for e in got] == [
            [{"value": i.value, "id": i.id} for i in s.interrupts] for s in snapshots
        ]
    bob = json.loads(run_cli("history", chat_db, "bob", "--json").out)
    assert [(e["step"], e["next"], e["writes"]) for e in bob] == [
        (1, ["ask"], []),
        (0, ["chat"], ["messages", "notes", "profile"]),
        (-1, ["__start__"], ["messages"]),
    ]
    assert bob[0]["interrupts"] == [{"value": {"question": "ok?"}, "id": bob[0]["interrupts"][0]["id"]}]


def test_history_table(chat_db: str) -> None:
    lines = run_cli("history", chat_db, "bob").out.splitlines()
    assert lines[0].split() == ["CHECKPOINT", "STEP", "SOURCE", "CREATED", "NEXT", "WRITES", "INTERRUPTS"]
    rows = [line.split()[1:3] + line.split()[4:] for line in lines[1:]]
    assert rows == [["1", "loop", "ask", "-", "1"], ["0", "loop", "chat", "messages,", "notes,", "profile", "-"],
                    ["-1", "input", "__start__", "messages", "-"]]  # fmt: skip


def test_show_prints_the_values_of_the_newest_or_a_named_checkpoint(chat_db: str) -> None:
    got = json.loads(run_cli("show", chat_db, "alice", "--json").out)
    assert got["values"] == {
        "messages": [
            {"type": "human", "content": "Alice", "additional_kwargs": {}, "response_metadata": {}, "name": None,
             "id": "h1"},
            {"type": "ai", "content": "hi Alice", "additional_kwargs": {}, "response_metadata": {}, "name": None,
             "id": "ai-1", "tool_calls": [], "invalid_tool_calls": [], "usage_metadata": None},
        ],
        "notes": ["chat", "answer:yes"],
        "profile": {"name": "Alice", "turns": 1},
    }  # fmt: skip
    assert (got["step"], got["next"], got["interrupts"]) == (2, [], [])
    first = history(chat_db, "alice")[-1].config["configurable"]["checkpoint_id"]
    old = json.loads(run_cli("show", chat_db, "alice", first[:30], "--json").out)
    assert (old["checkpoint_id"], old["values"]) == (first, {})
    assert json.loads(run_cli("show", chat_db, "alice", first, "--json", "--all").out)["values"] == {
        "__start__": {"messages": [{"type": "human", "content": "Alice", "additional_kwargs": {},
                                    "response_metadata": {}, "name": None, "id": "h1"}]}
    }  # fmt: skip
    text = run_cli("show", chat_db, "bob").out.splitlines()
    assert text[1:] == [
        "messages:",
        "  [human] Bob",
        "  [ai] hi Bob",
        'notes: ["chat"]',
        'profile: {"name": "Bob", "turns": 1}',
        "next: ask",
        f'interrupt: {{"value": {{"question": "ok?"}}, "id": "{history(chat_db, "bob")[0].interrupts[0].id}"}}',
    ]


def test_diff_shows_what_changed_channel_by_channel(chat_db: str) -> None:
    ids = [s.config["configurable"]["checkpoint_id"] for s in history(chat_db, "alice")]
    got = json.loads(run_cli("diff", chat_db, "alice", ids[2], ids[0], "--json").out)
    assert got == {
        "thread_id": "alice",
        "from": ids[2],
        "to": ids[0],
        "channels": {
            "messages": {
                "change": "messages",
                "added": [{"type": "ai", "content": "hi Alice", "additional_kwargs": {}, "response_metadata": {},
                           "name": None, "id": "ai-1", "tool_calls": [], "invalid_tool_calls": [],
                           "usage_metadata": None}],
                "removed": [],
                "changed": [],
            },
            "notes": {"change": "added", "value": ["chat", "answer:yes"]},
            "profile": {"change": "added", "value": {"name": "Alice", "turns": 1}},
        },
    }  # fmt: skip
    got = json.loads(run_cli("diff", chat_db, "alice", ids[1], ids[0], "--json").out)
    assert got["channels"] == {"notes": {"change": "appended", "items": ["answer:yes"]}}
    assert run_cli("diff", chat_db, "alice", ids[1], ids[0]).out.splitlines()[1:] == ['notes: appended ["answer:yes"]']
    assert run_cli("diff", chat_db, "alice", ids[0], ids[0]).out.splitlines()[1:] == ["No changes."]
    lines = run_cli("diff", chat_db, "alice", ids[3], ids[2]).out.splitlines()
    assert lines[1:] == ['messages: added [{"type": "human", "content": "Alice", "additional_kwargs": {}, '
                         '"response_metadata": {}, "name": null, "id": "h1"}]']  # fmt: skip
    lines = run_cli("diff", chat_db, "alice", ids[2], ids[1]).out.splitlines()
    assert lines[1:4] == ["messages: +1 -0 ~0 messages", "  + [ai] hi Alice", 'notes: added ["chat"]']


def test_diff_of_dict_and_scalar_values() -> None:
    from graphrt.cli._inspect import diff_values

    assert diff_values({"d": {"a": 1, "b": 2}, "n": 1, "gone": 0}, {"d": {"a": 1, "b": 3, "c": 4}, "n": 2}) == {
        "d": {"change": "keys", "added": {"c": 4}, "removed": [], "changed": {"b": {"from": 2, "to": 3}}},
        "gone": {"change": "removed", "value": 0},
        "n": {"change": "changed", "from": 1, "to": 2},
    }


def test_clear_errors_for_missing_threads_checkpoints_and_files(chat_db: str, tmp_path: Path) -> None:
    missing = run_cli("history", chat_db, "nobody")
    assert (missing.code, missing.out, missing.err) == (1, "", f"graphrt: error: No thread 'nobody' in {chat_db}\n")
    assert run_cli("show", chat_db, "alice", "zzz").err == "graphrt: error: No checkpoint 'zzz' in thread 'alice'\n"
    assert run_cli("show", chat_db, "alice", "1").err.startswith("graphrt: error: Checkpoint prefix '1' is ambiguous")
    nofile = str(tmp_path / "nope.sqlite")
    assert run_cli("threads", nofile).err == f"graphrt: error: No such database file: {nofile}\n"
    assert not Path(nofile).exists()  # a read command never creates a database
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a database at all" * 10)
    err = run_cli("threads", str(text)).err
    assert err == f"graphrt: error: {text} is not a SQLite database (file is not a database)\n"
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    assert run_cli("threads", str(other)).err == (
        f"graphrt: error: {other} is not a graphrt database (it has no graphrt tables).\n"
    )
    lg = str(Path(__file__).parent / "data" / "langgraph.sqlite")
    assert run_cli("threads", lg).err == (
        f"graphrt: error: {lg} is not a graphrt database (it has no graphrt tables). It looks like a LangGraph "
        "database: copy it with `graphrt import-langgraph`.\n"
    )

"""`graphrt store ...`, `prune`, `delete-thread`, `draw`, backends and the entry points."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from graphrt.checkpoint.sqlite import SqliteSaver
from graphrt.store.sqlite import SqliteStore
from tests.cli.conftest import build_chat, run_cli


def items(path: str, namespace: tuple[str, ...], key: str) -> dict:
    with SqliteStore.from_conn_string(path) as store:
        item = store.get(namespace, key)
        assert item is not None
        return item.dict()


def test_store_ls_get_and_search(chat_db: str) -> None:
    assert json.loads(run_cli("store", "ls", chat_db, "--json").out) == [["docs"], ["users", "u1"], ["users", "u2"]]
    assert run_cli("store", "ls", chat_db, "users").out == "users/u1\nusers/u2\n"
    got = json.loads(run_cli("store", "get", chat_db, "users/u1", "prefs", "--json").out)
    assert got == items(chat_db, ("users", "u1"), "prefs")
    assert got["value"] == {"theme": "dark", "n": 3}
    assert json.loads(run_cli("store", "get", chat_db, '["users", "u1"]', "prefs", "--json").out) == got
    text = run_cli("store", "get", chat_db, "users/u1", "prefs").out.splitlines()
    assert text[0] == "users/u1 prefs" and text[2:] == ["{", '  "theme": "dark",', '  "n": 3', "}"]
    found = json.loads(run_cli("store", "search", chat_db, "users", "--filter", '{"theme": "light"}', "--json").out)
    assert [(i["namespace"], i["key"], i["score"]) for i in found] == [(["users", "u2"], "prefs", None)]
    everything = json.loads(run_cli("store", "search", chat_db, "", "--json").out)
    assert [i["key"] for i in everything] == ["d1", "prefs", "prefs"]  # newest first
    table = run_cli("store", "search", chat_db, "docs").out.splitlines()
    assert table[0].split() == ["NAMESPACE", "KEY", "SCORE", "UPDATED", "VALUE"]
    assert table[1].split()[:3] == ["docs", "d1", "-"]


def test_store_search_by_query_needs_the_embeddings(chat_db: str, tmp_path: Path) -> None:
    err = run_cli("store", "search", chat_db, "docs", "--query", "owls").err
    assert err == (
        "graphrt: error: --query needs --embed SPEC: the embeddings the store was indexed with "
        "(e.g. 'static' or 'hashing')\n"
    )
    from graphrt.embeddings import HashingEmbeddings

    path = str(tmp_path / "indexed.sqlite")
    with SqliteStore.from_conn_string(path, index={"embed": HashingEmbeddings(64), "dims": 64}) as store:
        store.put(("docs",), "owl", {"text": "owls hunt at night"})
        store.put(("docs",), "cake", {"text": "a recipe for lemon cake"})
    got = json.loads(run_cli("store", "search", path, "docs", "--query", "owls hunt", "--embed", "hashing:64",
                             "--json").out)  # fmt: skip
    assert [i["key"] for i in got] == ["owl", "cake"]
    assert got[0]["score"] > got[1]["score"]


def test_store_errors(chat_db: str, tmp_path: Path) -> None:
    assert run_cli("store", "get", chat_db, "users/u9", "prefs").err == (
        f"graphrt: error: No item 'prefs' in namespace 'users/u9' of {chat_db}\n"
    )
    assert run_cli("store", "search", chat_db, "users", "--filter", "{oops").err.startswith(
        "graphrt: error: Bad --filter: not JSON"
    )
    only_checkpoints = str(tmp_path / "cp.sqlite")
    with SqliteSaver.from_conn_string(only_checkpoints) as saver:
        build_chat().compile(checkpointer=saver).invoke({"messages": ["hi"]}, {"configurable": {"thread_id": "x"}})
    assert run_cli("store", "ls", only_checkpoints).err == (
        f"graphrt: error: {only_checkpoints} has no graphrt store (no store items were ever written to it)\n"
    )


def counts(path: str) -> dict[str, int]:
    with SqliteSaver.from_conn_string(path) as saver:
        return {t.thread_id: t.checkpoints for t in saver.list_threads()}


def test_prune_asks_first_and_keeps_the_newest_checkpoint(chat_db: str) -> None:
    no = run_cli("prune", chat_db, "--keep-latest", stdin="n\n")
    assert no.code == 1
    assert no.err == (
        f"Prune 2 thread(s) of {chat_db}, keeping only the newest checkpoint of each? [y/N] "
        "graphrt: error: Aborted; nothing was changed (pass --yes to skip this question).\n"
    )
    assert run_cli("prune", chat_db, "--keep-latest").code == 1  # no answer at all: aborted too
    assert counts(chat_db) == {"alice": 4, "bob": 3}
    yes = run_cli("prune", chat_db, "--keep-latest", "--thread", "alice", stdin="y\n")
    assert (yes.code, yes.out) == (0, "Pruned 1 thread(s): 3 checkpoint(s) removed.\n")
    assert counts(chat_db) == {"alice": 1, "bob": 3}
    done = run_cli("prune", chat_db, "--keep-latest", "--yes", "--json")
    assert json.loads(done.out) == {"pruned": ["bob", "alice"], "checkpoints_removed": {"bob": 2, "alice": 0}}
    assert done.err == "[1/2] pruned bob\n[2/2] pruned alice\n"  # progress, one line each off a terminal
    assert counts(chat_db) == {"alice": 1, "bob": 1}
    with SqliteSaver.from_conn_string(chat_db) as saver:  # the kept head still resumes
        graph = build_chat().compile(checkpointer=saver)
        out = graph.invoke(
            __import__("graphrt.types").types.Command(resume="ok"), {"configurable": {"thread_id": "bob"}}
        )
    assert out["notes"] == ["chat", "answer:ok"]
    assert run_cli("prune", chat_db, "--thread", "nobody", "--keep-latest", "--yes").err == (
        f"graphrt: error: No thread 'nobody' in {chat_db}; nothing was changed.\n"
    )
    assert run_cli("prune", chat_db).code == 2  # --keep-latest is required


def test_delete_thread_asks_first(chat_db: str) -> None:
    no = run_cli("delete-thread", chat_db, "bob", stdin="\n")
    assert no.code == 1 and counts(chat_db) == {"alice": 4, "bob": 3}
    yes = run_cli("delete-thread", chat_db, "bob", stdin="yes\n")
    assert yes.out == "Deleted thread 'bob'.\n"
    assert counts(chat_db) == {"alice": 4}
    assert json.loads(run_cli("delete-thread", chat_db, "alice", "--yes", "--json").out) == {"deleted": "alice"}
    assert run_cli("delete-thread", chat_db, "alice", "--yes").err == (
        f"graphrt: error: No thread 'alice' in {chat_db}; nothing was changed.\n"
    )


GRAPH_MODULE = """
from tests.cli.conftest import build_chat

graph = build_chat().compile()
builder = build_chat()
"""


def test_draw_uses_the_graphs_own_drawing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_agent_mod.py").write_text(GRAPH_MODULE)
    monkeypatch.syspath_prepend(str(Path(__file__).parents[2]))
    monkeypatch.chdir(tmp_path)
    graph = build_chat().compile().get_graph()
    assert run_cli("draw", "my_agent_mod:graph", "--mermaid").out == graph.draw_mermaid()
    assert run_cli("draw", "my_agent_mod:graph").out.rstrip("\n") == graph.draw_ascii().rstrip("\n")
    assert run_cli("draw", "my_agent_mod:builder", "--ascii", "--xray").out.rstrip("\n") == graph.draw_ascii().rstrip(
        "\n"
    )
    assert run_cli("draw", "my_agent_mod:nope").err == "graphrt: error: Module 'my_agent_mod' has no attribute 'nope'\n"
    assert (
        run_cli("draw", "no_such_mod_x:graph").err
        == "graphrt: error: Cannot import module 'no_such_mod_x': no such module\n"
    )
    assert (
        run_cli("draw", "my_agent_mod").err
        == "graphrt: error: Bad graph 'my_agent_mod': use MODULE:ATTR, e.g. myapp.agent:graph\n"
    )
    assert run_cli("draw", "my_agent_mod:GRAPH_MODULE".replace("GRAPH_MODULE", "build_chat")).err == (
        "graphrt: error: 'my_agent_mod:build_chat' is a function, not a graph (no get_graph())\n"
    )


@pytest.mark.parametrize(
    "target",
    ["postgresql://alice:s3cr3t-pw@127.0.0.1:1/db?connect_timeout=2", "redis://:s3cr3t-pw@127.0.0.1:1/0"],
)
def test_server_databases_fail_clearly_without_their_password(target: str) -> None:
    result = run_cli("threads", target)
    assert result.code == 1
    assert "s3cr3t-pw" not in result.err + result.out
    backend = "PostgreSQL" if target.startswith("postgresql") else "Redis"
    assert result.err.startswith(
        (
            f"graphrt: error: Cannot reach {backend} at ",
            f"graphrt: error: {backend} support is not available in this build of graphrt",
            f"graphrt: error: {backend} support needs graphrt[",
        )
    )
    if "Cannot reach" in result.err:
        assert ":***@127.0.0.1:1" in result.err


def test_redact_hides_passwords_in_urls_and_keyword_dsns() -> None:
    from graphrt.cli._backends import redact

    assert redact("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact("host=h password=pw dbname=x") == "host=h password=*** dbname=x"
    assert redact("redis://h:6379/0") == "redis://h:6379/0"
    from graphrt.cli._backends import backend_for

    assert backend_for("host=h dbname=x password=pw").name == "PostgreSQL"
    assert backend_for("sqlite:///tmp/x.sqlite").name == backend_for("chat.sqlite").name == "SQLite"
    assert run_cli("threads", "mysql://u:pw@h/db").err == (
        "graphrt: error: Unknown database scheme 'mysql://' in mysql://u:***@h/db: use a SQLite path or one of "
        "sqlite://, file://, postgres://, postgresql://, redis://, rediss://\n"
    )


def test_python_dash_m_and_help(chat_db: str) -> None:
    env_path = str(Path(__file__).parents[2])
    done = subprocess.run(
        [sys.executable, "-m", "graphrt", "threads", chat_db, "--json"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert [t["thread_id"] for t in json.loads(done.stdout)] == ["bob", "alice"]
    usage = run_cli("--help")
    assert usage.code == 0
    for command in (
        "threads",
        "history",
        "show",
        "diff",
        "store",
        "prune",
        "delete-thread",
        "draw",
        "import-langgraph",
    ):
        assert command in usage.out


def test_an_unreachable_server_is_one_line_without_the_password() -> None:
    from contextlib import contextmanager

    from graphrt.cli._backends import BACKENDS, CliError, _opened

    @contextmanager
    def refusing() -> Iterator[None]:
        raise OSError('connection to "10.0.0.9" failed for user "u" with password "hunter2"\nmore detail')
        yield

    target = "postgresql://u:hunter2@10.0.0.9:5432/db"
    with pytest.raises(CliError) as caught, _opened(refusing(), BACKENDS[1], target):
        pass
    assert str(caught.value) == (
        'Cannot reach PostgreSQL at postgresql://u:***@10.0.0.9:5432/db: connection to "10.0.0.9" failed for '
        'user "u" with password "***"'
    )


def test_verbose_logs_graphrt_events_to_stderr(chat_db: str) -> None:
    quiet = run_cli("threads", chat_db)
    assert quiet.err == ""
    loud = run_cli("threads", chat_db, "-vv", "--json")
    assert loud.code == 0 and json.loads(loud.out)[0]["thread_id"] == "bob"
    import logging

    assert logging.getLogger("graphrt").level == logging.DEBUG
    run_cli("threads", chat_db)  # a later call without -v removes the handler again
    assert not [h for h in logging.getLogger("graphrt").handlers if type(h).__name__ == "_StderrHandler"]
    assert logging.getLogger("graphrt").level == logging.NOTSET


def test_the_console_script_entry_point(chat_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import tomllib

    spec = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]["scripts"]["graphrt"]
    module, _, attr = spec.partition(":")
    entry = getattr(importlib.import_module(module), attr)
    monkeypatch.setattr(sys, "argv", ["graphrt", "history", chat_db, "nobody"])
    with pytest.raises(SystemExit) as exited:
        entry()
    assert exited.value.code == 1

"""The main job: the memory chatbot remembers on one thread and recalls on another in a second process, and
`--chat` continues one thread across runs. Real processes, one SQLite file, the scripted model."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "memory_chatbot.py"


def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
    keys = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "GRAPHRT_EXAMPLE_MODEL")
    env = {**{k: v for k, v in os.environ.items() if k not in keys}, **(env or {})}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args], input=stdin, capture_output=True, text=True, env=env, timeout=100
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_demo_remembers_across_threads_and_processes(tmp_path: Path) -> None:
    db = tmp_path / "bot.sqlite"
    out = run("--db", str(db))
    first, second = out.split("(a new process)")
    pids = re.findall(r"=== process (\d+)", out)
    assert len(pids) == 2 and pids[0] != pids[1]
    assert f"Data: {db}" in out and "scripted model" in out
    # Process 1: the fact is saved through the memory tool, and the conversation is pretty-printed.
    assert "Hi! Remember: my name is Bob" in first and "content: User's name is Bob" in first
    assert "Got it, I'll remember that." in first
    # Process 2, a fresh thread: the answer can only come from the store in the shared file.
    assert "what is my name?" in second and "Your name is Bob." in second
    history = re.findall(r"^\s+(-?\d+)\s+(input|loop)\s+(\S+)\s+(\d+)\s+\S+$", second, re.M)
    assert history == [("1", "loop", "-", "2"), ("0", "loop", "chat", "1"), ("-1", "input", "__start__", "0")]
    assert re.search(r"""^\S+  "User's name is Bob"  \(saved """, second, re.M)
    # One SQLite file holds both checkpoints and memories.
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        assert {"graphrt_checkpoints", "graphrt_store"} <= tables
        threads = {r[0] for r in conn.execute("select distinct thread_id from graphrt_checkpoints")}
    assert len(threads) == 2


def test_demo_twice_keeps_one_memory_for_its_user(tmp_path: Path) -> None:
    db = str(tmp_path / "bot.sqlite")
    run("--db", db)
    out = run("--db", db)
    assert out.count('"User\'s name is Bob"') == 1


def test_chat_continues_the_thread_across_runs(tmp_path: Path) -> None:
    db = str(tmp_path / "bot.sqlite")
    out = run("--chat", "--db", db, stdin="remember: I like green tea\n")
    assert "Thread 'chat', user 'me': new." in out and "content: User likes green tea" in out
    out = run("--chat", "--db", db, stdin="what do you remember about me?\nexit\n")
    assert "continuing, 4 messages so far." in out
    assert "Here is what I remember about you: User likes green tea" in out
    out = run("--chat", "--db", db, "--thread", "other", stdin="")
    assert "Thread 'other', user 'me': new." in out and "'User likes green tea'" in out


def test_demo_with_a_configured_provider(tmp_path: Path) -> None:
    """OPENAI_API_KEY + OPENAI_BASE_URL: both processes talk to an OpenAI-compatible server (here, in the
    test process); the second process's request carries the memory the first one saved."""
    from tests.models.conftest import FakeServer, Reply

    def completion(id: str, message: dict[str, object]) -> Reply:
        return Reply(json={"id": id, "object": "chat.completion", "choices": [{"index": 0, "message": message}]})

    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "manage_memory", "arguments": '{"content": "User\'s name is Bob"}'},
    }
    server = FakeServer()
    server.reply(
        completion("r1", {"role": "assistant", "content": None, "tool_calls": [call]}),
        completion("r2", {"role": "assistant", "content": "Noted, Bob."}),
        completion("r3", {"role": "assistant", "content": "You are Bob."}),
    )
    server.thread.start()
    env = {
        "OPENAI_API_KEY": "not-a-real-key",
        "OPENAI_BASE_URL": server.url,
        "GRAPHRT_EXAMPLE_MODEL": "openai:test-model",
    }
    try:
        out = run("--db", str(tmp_path / "bot.sqlite"), env=env)
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(timeout=5)
    assert "Model: openai model test-model" in out and "scripted" not in out
    assert "Noted, Bob." in out and out.split("(a new process)")[1].count("You are Bob.") == 1
    recall = server.requests[2].body
    assert recall["messages"][0]["role"] == "system" and "- User's name is Bob" in recall["messages"][0]["content"]
    assert recall["messages"][1:] == [{"role": "user", "content": "what is my name?"}]
    assert "not-a-real-key" not in out

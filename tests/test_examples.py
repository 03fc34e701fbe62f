"""Every seed example is a program in `examples/`; each runs here in its own process, on the scripted model.

The expected lines are what the seed documents show (or, for subgraphs, what LangGraph 1.2.22 prints for
the same program).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def run(name: str, *args: str, stdin: str | None = None) -> str:
    env = {
        k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GRAPHRT_EXAMPLE_MODEL")
    }
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=100,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_store_basics() -> None:
    out = run("store_basics.py")
    rules = "['User likes short, direct language', 'User only speaks English & python']"
    assert f"get: a-memory {{'rules': {rules}, 'my-key': 'my-value'}}" in out
    assert f"search: [('a-memory', {rules}, 1.0)]" in out
    assert "course get: {'food_preference': 'I like pizza'}" in out


@pytest.mark.parametrize("args", [(), ("--async",), ("--saver", "sqlite"), ("--saver", "sqlite", "--async")])
def test_short_term_memory(args: tuple[str, ...], tmp_path: Path) -> None:
    extra = ("--db", str(tmp_path / "c.sqlite")) if "sqlite" in args else ()
    out = run("short_term_memory.py", *args, *extra)
    turns = [block.split("\n\n", 1)[1].strip() for block in out.split("=" * 20)[1:] if "\n\n" in block]
    assert [t for t in turns if t] == [
        "hi! I'm bob",
        "Hi Bob! How are you doing today? Is there anything I can help you with?",
        "what's my name?",
        "Your name is Bob.",
    ]


def test_long_term_memory_node_with_config_user_id_and_store() -> None:
    out = run("long_term_memory.py")
    # Thread 2 starts empty: the name can only come from the store, through the system prompt.
    assert out.count("Human Message") == 2
    assert "Hi Bob! I'll remember that your name is Bob." in out
    assert out.rstrip().endswith("Your name is Bob.")


def test_agent_with_get_user_info_and_save_user_info() -> None:
    out = run("agent_user_info.py")
    assert "Name: get_user_info\n\n{'name': 'John Smith', 'language': 'English'}" in out
    assert "Name: save_user_info\n\nSuccessfully saved user info." in out
    assert out.rstrip().endswith("store: {'name': 'John Smith'}")


def test_profile_and_collection() -> None:
    out = run("profile_and_collection.py")
    assert "profile: {'user_name': 'Lance', 'interests': ['bike around San Francisco', 'eat at bakeries']}" in out
    assert '"interests": ["bike around San Francisco", "eat at bakeries"]} - try Arsicault Bakery.' in out
    assert "memories: ['User likes to bike around San Francisco', 'User likes to eat at bakeries']" in out
    assert "You told me: " in out and "User likes to eat at bakeries" in out.rsplit("You told me: ", 1)[1]


def test_subgraphs() -> None:
    out = run("subgraphs.py").splitlines()
    assert out[0].startswith("stream: (('node_1:") and out[0].endswith("{'subgraph_node_1': {'foo': 'hibar'}})")
    assert out[1:] == [
        "stream: ((), {'node_1': {'foo': 'hibar'}})",
        "state: {'foo': 'hibar'}",
        "notes seen by the subgraph: 1",
        "notes seen by the subgraph: 2",
        "notes seen by the subgraph: 3",
    ]


def test_functional_memory() -> None:
    out = run("functional_memory.py")
    assert "Hi Bob!" in out and out.rstrip().endswith("Your name is Bob.")


def test_quickstart() -> None:
    assert "You have said 2 thing(s) so far" in run("quickstart.py")

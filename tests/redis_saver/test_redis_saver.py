"""What only the Redis saver has: its construction, TTL, server restarts, dropped connections, secrets."""

from __future__ import annotations

import operator
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

import anyio
import pytest
import redis
import redis.asyncio
from _redis_server import RedisServer

from graphrt.checkpoint.redis import RedisSaver
from graphrt.checkpoint.redis.aio import AsyncRedisSaver
from graphrt.graph import START, StateGraph

ROOT = Path(__file__).resolve().parents[2]
THREAD: Any = {"configurable": {"thread_id": "chat"}}


class Chat(TypedDict, total=False):
    messages: Annotated[list[str], operator.add]


def chat_graph(saver: Any) -> Any:
    def reply(state: Chat) -> Chat:
        return {"messages": [f"echo {state['messages'][-1]}"]}

    builder = StateGraph(Chat)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    return builder.compile(checkpointer=saver)


def thread_keys(client: redis.Redis, thread_id: str = "chat") -> list[bytes]:
    return sorted(k for k in client.keys(b"graphrt:{" + thread_id.encode() + b"}:*") if not k.endswith(b":ls"))


# -- construction ----------------------------------------------------------------------------------


def test_importing_without_redis_py_says_how_to_install_it() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "try:\n    import graphrt.checkpoint.redis\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "pip install 'graphrt[redis]'" in out


def test_from_conn_string_setup_and_a_graph_round_trip(redis_url: str) -> None:
    with RedisSaver.from_conn_string(redis_url) as saver:
        saver.setup()
        assert saver.is_setup
        graph = chat_graph(saver)
        graph.invoke({"messages": ["hi"]}, THREAD)
        assert graph.invoke({"messages": ["again"]}, THREAD)["messages"] == ["hi", "echo hi", "again", "echo again"]
        assert len(list(graph.get_state_history(THREAD))) == 6


def test_async_saver_from_conn_string_and_asetup(redis_url: str) -> None:
    async def main() -> list[str]:
        async with AsyncRedisSaver.from_conn_string(redis_url) as saver:
            await saver.asetup()
            graph = chat_graph(saver)
            await graph.ainvoke({"messages": ["hi"]}, THREAD)
            state = await graph.aget_state(THREAD)
            messages: list[str] = state.values["messages"]
            return messages

    assert anyio.run(main) == ["hi", "echo hi"]
    with RedisSaver.from_conn_string(redis_url) as saver:  # the same data, seen by the sync class
        assert chat_graph(saver).get_state(THREAD).values["messages"] == ["hi", "echo hi"]


def test_constructors_reject_the_wrong_client_kind(redis_url: str) -> None:
    with pytest.raises(TypeError, match=r"RedisSaver takes a redis.Redis client"):
        RedisSaver(redis.asyncio.Redis.from_url(redis_url))  # type: ignore[arg-type]
    client = redis.Redis.from_url(redis_url)
    with pytest.raises(TypeError, match=r"AsyncRedisSaver takes a redis.asyncio.Redis client"):
        AsyncRedisSaver(client)  # type: ignore[arg-type]
    client.close()


@pytest.mark.parametrize(
    ("ttl", "message"),
    [
        ({"default_ttl": 0}, "positive number of minutes"),
        ({"default_ttl": "5"}, "positive number of minutes"),
        ({"default_ttl": 5, "refresh_on_read": "yes"}, "True or False"),
        ({"default": 5}, "Unknown ttl keys"),
    ],
)
def test_bad_ttl_is_refused_clearly(redis_url: str, ttl: dict[str, Any], message: str) -> None:
    client = redis.Redis.from_url(redis_url)
    with pytest.raises(ValueError, match=message):
        RedisSaver(client, ttl=ttl)
    client.close()


# -- TTL -------------------------------------------------------------------------------------------


def test_a_thread_expires_after_its_ttl(redis_url: str) -> None:
    with RedisSaver.from_conn_string(redis_url, ttl={"default_ttl": 0.01, "refresh_on_read": False}) as saver:
        graph = chat_graph(saver)
        graph.invoke({"messages": ["hi"]}, THREAD)
        keys = thread_keys(saver.client)
        assert keys
        assert all(0 < saver.client.pttl(k) <= 600 for k in keys)
        time.sleep(0.7)
        assert saver.get_tuple(THREAD) is None
        assert thread_keys(saver.client) == []
        assert list(saver.list(None)) == []


def test_refresh_on_read_pushes_the_expiry_back(redis_url: str) -> None:
    with RedisSaver.from_conn_string(redis_url, ttl={"default_ttl": 0.02, "refresh_on_read": True}) as saver:
        graph = chat_graph(saver)
        graph.invoke({"messages": ["hi"]}, THREAD)
        for _ in range(4):  # 4 x 0.5 s > the 1.2 s TTL: only the reads keep it alive
            time.sleep(0.5)
            assert graph.get_state(THREAD).values["messages"] == ["hi", "echo hi"]
    with RedisSaver.from_conn_string(redis_url, ttl={"default_ttl": 0.02, "refresh_on_read": False}) as saver:
        saver.client.flushdb()
        graph = chat_graph(saver)
        graph.invoke({"messages": ["hi"]}, THREAD)
        time.sleep(0.5)
        graph.get_state(THREAD)
        time.sleep(0.9)
        assert saver.get_tuple(THREAD) is None


def test_without_ttl_keys_never_expire(redis_url: str) -> None:
    with RedisSaver.from_conn_string(redis_url) as saver:
        chat_graph(saver).invoke({"messages": ["hi"]}, THREAD)
        assert all(saver.client.pttl(k) == -1 for k in thread_keys(saver.client))


# -- the real world --------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["restart", "kill -9"])
def test_a_server_restart_keeps_completed_checkpoints_and_the_saver_resumes(
    private_redis: RedisServer, how: str
) -> None:
    with RedisSaver.from_conn_string(private_redis.url) as saver:
        graph = chat_graph(saver)
        graph.invoke({"messages": ["one"]}, THREAD)
        graph.invoke({"messages": ["two"]}, THREAD)
        before = [s.config for s in graph.get_state_history(THREAD)]
        if how == "restart":
            private_redis.stop()
        else:
            private_redis.kill()
        private_redis.start()
        # The same saver object (and its pooled connections, now dead) carries on.
        assert [s.config for s in graph.get_state_history(THREAD)] == before
        result = graph.invoke({"messages": ["three"]}, THREAD)
        assert result["messages"] == ["one", "echo one", "two", "echo two", "three", "echo three"]
        assert len(list(graph.get_state_history(THREAD))) == 9


def test_killed_connections_are_reopened_transparently(redis_url: str) -> None:
    with RedisSaver.from_conn_string(redis_url) as saver:
        graph = chat_graph(saver)
        graph.invoke({"messages": ["one"]}, THREAD)
        killer = redis.Redis.from_url(redis_url)
        expected = ["one", "echo one"]
        for turn in ("two", "three"):
            assert killer.client_kill_filter(_type="normal", skipme=True) >= 1
            assert graph.get_state(THREAD).values["messages"] == expected  # a read on a dead connection
            assert killer.client_kill_filter(_type="normal", skipme=True) >= 1
            graph.invoke({"messages": [turn]}, THREAD)  # a claim, writes and checkpoints on a dead one
            expected += [turn, f"echo {turn}"]
        killer.close()
        assert graph.get_state(THREAD).values["messages"] == expected
        assert len(list(graph.get_state_history(THREAD))) == 9


def test_no_password_in_reprs_or_errors(private_redis: RedisServer) -> None:
    secret = "s3cr3t-pw-31337"
    admin = redis.Redis.from_url(private_redis.url)
    admin.config_set("requirepass", secret)
    admin.close()
    url = f"redis://:{secret}@127.0.0.1:{private_redis.port}/0"
    with RedisSaver.from_conn_string(url) as saver:
        saver.setup()
        chat_graph(saver).invoke({"messages": ["hi"]}, THREAD)
        assert secret not in repr(saver) and f"127.0.0.1:{private_redis.port}/0" in repr(saver)

    async def async_repr() -> str:
        async with AsyncRedisSaver.from_conn_string(url) as saver:
            await saver.asetup()
            return repr(saver)

    assert secret not in anyio.run(async_repr)

    wrong = f"redis://:{secret}-wrong@127.0.0.1:{private_redis.port}/0"
    with RedisSaver.from_conn_string(wrong) as saver, pytest.raises(redis.RedisError) as failed:
        saver.get_tuple(THREAD)
    assert secret not in str(failed.value) and secret not in repr(failed.value)
    private_redis.stop()
    with RedisSaver.from_conn_string(url) as saver, pytest.raises(redis.RedisError) as down:
        chat_graph(saver).invoke({"messages": ["hi"]}, THREAD)
    assert secret not in str(down.value) and secret not in repr(down.value)


def _fail_once(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    """Make `owner.name` raise ConnectionError on its first call (as a connection dropped mid-command)."""
    original, calls = getattr(owner, name), []

    def flaky(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise redis.ConnectionError("Connection reset by peer (injected)")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(owner, name, flaky)
    return calls


def test_a_write_that_fails_before_its_commit_is_run_again(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with RedisSaver.from_conn_string(redis_url) as saver:
        graph = chat_graph(saver)
        graph.invoke({"messages": ["one"]}, THREAD)
        calls = _fail_once(monkeypatch, redis.client.Pipeline, "watch")
        graph.invoke({"messages": ["two"]}, THREAD)
        assert len(calls) > 1
        assert graph.get_state(THREAD).values["messages"] == ["one", "echo one", "two", "echo two"]
        assert len(list(graph.get_state_history(THREAD))) == 6


def test_a_read_whose_reply_is_lost_is_sent_again(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with RedisSaver.from_conn_string(redis_url) as saver:
        graph = chat_graph(saver)
        graph.invoke({"messages": ["one"]}, THREAD)
        calls = _fail_once(monkeypatch, redis.connection.Connection, "read_response")
        assert graph.get_state(THREAD).values["messages"] == ["one", "echo one"]
        assert len(calls) > 1

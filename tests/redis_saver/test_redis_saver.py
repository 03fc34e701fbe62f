"""What only the Redis saver has: its construction, TTL, server restarts, dropped connections, secrets."""

from __future__ import annotations

import asyncio
import gc
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

from graphrt.checkpoint.base import BaseCheckpointSaver
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
    with pytest.raises(ValueError, match="decode_responses=False"):
        AsyncRedisSaver(redis.asyncio.Redis.from_url(redis_url, decode_responses=True))
    decoding = redis.Redis.from_url(redis_url, decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses=False"):
        RedisSaver(decoding)
    decoding.close()


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


# -- the async saver on redis.asyncio --------------------------------------------------------------


def async_chat_graph(saver: Any) -> Any:
    async def reply(state: Chat) -> Chat:
        return {"messages": [f"echo {state['messages'][-1]}"]}

    builder = StateGraph(Chat)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    return builder.compile(checkpointer=saver)


def test_a_user_made_asyncio_client_runs_graphs_without_any_worker_thread(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the async Redis saver used a worker thread")

    monkeypatch.setattr(BaseCheckpointSaver, "_offload", refuse)
    monkeypatch.setattr(anyio.to_thread, "run_sync", refuse)
    monkeypatch.setattr(asyncio.BaseEventLoop, "run_in_executor", refuse)

    async def main() -> list[Any]:
        client = redis.asyncio.Redis.from_url(redis_url)  # made by the user, passed as is
        saver = AsyncRedisSaver(client, ttl={"default_ttl": 5})
        await saver.asetup()
        graph = async_chat_graph(saver)
        await graph.ainvoke({"messages": ["hi"]}, THREAD)
        await graph.ainvoke({"messages": ["again"]}, THREAD)
        history = [s async for s in graph.aget_state_history(THREAD)]
        await saver.acopy_thread("chat", "copy")
        await saver.aprune(["copy"], strategy="keep_latest")
        copied = await saver.aget_tuple({"configurable": {"thread_id": "copy"}})
        await saver.adelete_thread("chat")
        gone = await saver.aget_tuple(THREAD)
        await client.aclose()
        return [history, copied, gone]

    history, copied, gone = asyncio.run(main())
    assert history[0].values["messages"] == ["hi", "echo hi", "again", "echo again"]
    assert len(history) == 6
    assert copied.checkpoint["channel_values"]["messages"] == ["hi", "echo hi", "again", "echo again"]
    assert gone is None


def test_the_async_saver_outlives_event_loops_and_serves_sync_callers(redis_url: str) -> None:
    """One saver under one `asyncio.run` after another, its sync methods from a plain thread meanwhile."""
    client = redis.asyncio.Redis.from_url(redis_url)
    saver = AsyncRedisSaver(client)
    graph = async_chat_graph(saver)
    for turn in ("one", "two", "three"):
        asyncio.run(graph.ainvoke({"messages": [turn]}, THREAD))
        assert graph.get_state(THREAD).values["messages"][-1] == f"echo {turn}"  # no loop running: a private one

    async def from_a_thread_while_the_loop_runs() -> Any:
        return await asyncio.to_thread(saver.get_tuple, THREAD)

    assert asyncio.run(from_a_thread_while_the_loop_runs()).checkpoint["channel_values"]["messages"][-1] == "echo three"

    async def on_the_loop_thread() -> None:
        with pytest.raises(RuntimeError, match="cannot run on the event loop's thread"):
            saver.get_tuple(THREAD)
        with pytest.raises(RuntimeError, match="cannot run on the event loop's thread"):
            saver.setup()

    asyncio.run(on_the_loop_thread())
    saver.setup()
    assert saver.is_setup
    asyncio.run(client.aclose())
    gc.collect()  # a connection left open on a closed loop would warn here (warnings are errors)


def test_async_killed_connections_and_a_write_failing_before_commit_are_retried(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> tuple[list[str], int, int]:
        async with AsyncRedisSaver.from_conn_string(redis_url) as saver:
            graph = async_chat_graph(saver)
            await graph.ainvoke({"messages": ["one"]}, THREAD)
            killer = redis.Redis.from_url(redis_url)
            assert killer.client_kill_filter(_type="normal", skipme=True) >= 1
            assert (await graph.aget_state(THREAD)).values["messages"] == ["one", "echo one"]  # on a dead connection
            assert killer.client_kill_filter(_type="normal", skipme=True) >= 1
            await graph.ainvoke({"messages": ["two"]}, THREAD)  # claim, writes and checkpoints on a dead one
            killer.close()
            calls = _fail_first_read_in_a_write(monkeypatch)
            await graph.ainvoke({"messages": ["three"]}, THREAD)
            state = await graph.aget_state(THREAD)
            return state.values["messages"], len(calls), len([s async for s in graph.aget_state_history(THREAD)])

    messages, reads, saved = asyncio.run(main())
    assert messages == ["one", "echo one", "two", "echo two", "three", "echo three"]
    assert reads > 1
    assert saved == 9


def _fail_first_read_in_a_write(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Drop the connection under the first read of a write transaction (after its WATCH): the whole
    transaction must run again, since the body already read through the dead connection."""
    original, calls = redis.asyncio.client.Pipeline.immediate_execute_command, []

    async def flaky(self: Any, *args: Any, **kwargs: Any) -> Any:
        if args[0] != "WATCH":
            calls.append(args[0])
            if len(calls) == 1:
                raise redis.WatchError("A ConnectionError occurred while watching (injected)")
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(redis.asyncio.client.Pipeline, "immediate_execute_command", flaky)
    return calls


def test_async_ttl_expires_and_refreshes_on_read(redis_url: str) -> None:
    async def main() -> tuple[Any, Any]:
        ttl = {"default_ttl": 0.01, "refresh_on_read": True}  # 600 ms
        async with AsyncRedisSaver.from_conn_string(redis_url, ttl=ttl) as saver:
            graph = async_chat_graph(saver)
            await graph.ainvoke({"messages": ["hi"]}, THREAD)
            for _ in range(3):  # 3 x 0.4 s > the TTL: only the reads keep it alive
                await asyncio.sleep(0.4)
                assert (await graph.aget_state(THREAD)).values["messages"] == ["hi", "echo hi"]
            await asyncio.sleep(0.9)
            return await saver.aget_tuple(THREAD), [k async for k in saver.aclient.scan_iter(b"graphrt:{chat}:cp")]

    found, keys = asyncio.run(main())
    assert found is None and keys == []


def test_async_no_password_in_reprs_or_errors(private_redis: RedisServer) -> None:
    secret = "s3cr3t-pw-27182"
    admin = redis.Redis.from_url(private_redis.url)
    admin.config_set("requirepass", secret)
    admin.close()
    wrong = f"redis://:{secret}-wrong@127.0.0.1:{private_redis.port}/0"

    async def main() -> tuple[str, BaseException]:
        async with AsyncRedisSaver.from_conn_string(wrong) as saver:
            try:
                await saver.aget_tuple(THREAD)
            except redis.RedisError as exc:
                return repr(saver), exc
        raise AssertionError("a wrong password was accepted")

    shown, error = asyncio.run(main())
    assert secret not in shown and f"127.0.0.1:{private_redis.port}/0" in shown
    assert secret not in str(error) and secret not in repr(error)

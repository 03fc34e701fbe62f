"""The test server itself: it starts, isolates tests, restarts keeping its AOF data, and stops."""

from __future__ import annotations

import _redis_server
import pytest
import redis
from _redis_server import RedisServer


def test_each_test_starts_with_an_empty_database_first(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.dbsize() == 0
    client.set("leftover", b"x")
    client.close()


def test_each_test_starts_with_an_empty_database_second(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.dbsize() == 0
    client.close()


def test_private_server_keeps_acknowledged_writes_across_a_restart(private_redis: RedisServer) -> None:
    client = redis.Redis.from_url(private_redis.url)
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    assert client.config_get("save") == {"save": ""}
    client.set("k", b"v")
    client.close()
    port, pid = private_redis.port, private_redis.proc.pid if private_redis.proc else None
    private_redis.restart()
    assert private_redis.port == port
    assert private_redis.proc is not None and private_redis.proc.pid != pid
    client = redis.Redis.from_url(private_redis.url)
    assert client.get("k") == b"v"
    client.close()


@pytest.mark.parametrize(("ci", "outcome"), [("true", "failed"), ("", "skipped")])
def test_a_missing_redis_server_fails_under_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: str
) -> None:
    monkeypatch.setattr(_redis_server.shutil, "which", lambda name: None)
    monkeypatch.setattr(_redis_server.os, "access", lambda path, mode: False)
    monkeypatch.setenv("CI", ci)
    with pytest.raises(BaseException) as stopped:
        _redis_server.require_redis_server_binary()
    assert type(stopped.value).__name__ == {"failed": "Failed", "skipped": "Skipped"}[outcome]
    assert "apt-get install redis-server" in str(stopped.value)

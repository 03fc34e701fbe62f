"""A throwaway `redis-server` for the tests: started on a free loopback port, stopped at the end.

`GRAPHRT_TEST_REDIS_URL` points the tests at another server instead (its database is flushed before
each test). Without either, Redis tests skip, except under CI (`CI=true`), where they fail: CI
installs `redis-server` (see `.ci/run`), so a missing server there is a broken machine.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ENV_URL = "GRAPHRT_TEST_REDIS_URL"


def redis_server_binary() -> str | None:
    """Path of `redis-server` (PATH, then Debian's location), or None."""
    return shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.access(p, os.X_OK)), None
    )


def require_redis_server_binary() -> str:
    """The binary, or skip (fail under CI) naming what to install."""
    binary = redis_server_binary()
    if binary is None:
        message = "redis-server is not installed (apt-get install redis-server); set GRAPHRT_TEST_REDIS_URL instead"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return binary


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One `redis-server` process with AOF on, in its own temporary directory; restartable on its port."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="graphrt-redis-"))
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server (on a new free port the first time, on the same port after `stop`)."""
        for attempt in range(5):
            port = self.port or _free_port()
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    "--port", str(port),
                    "--bind", "127.0.0.1",
                    "--dir", str(self.dir),
                    "--appendonly", "yes",
                    "--appendfsync", "everysec",
                    "--save", "",
                    "--daemonize", "no",
                    "--logfile", str(self.dir / "redis.log"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            if self._wait_ready(port):
                self.port = port
                return
            self._reap()
            if self.port:  # a restart on our own port must work; a first start may retry on another
                break
            del attempt
        log = (self.dir / "redis.log").read_text(errors="replace")[-2000:] if (self.dir / "redis.log").exists() else ""
        raise RuntimeError(f"redis-server did not start:\n{log}")

    def _wait_ready(self, port: int) -> bool:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        """Stop the server cleanly (SIGTERM: Redis flushes its AOF first)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
        self._reap()

    def kill(self) -> None:
        """Stop the server abruptly (SIGKILL), as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        self._reap()

    def _reap(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def private_server() -> Iterator[RedisServer]:
    """A server of one's own (for tests that stop or restart it); stopped and removed afterwards."""
    server = RedisServer(require_redis_server_binary())
    try:
        server.start()
        yield server
    finally:
        server.close()


_session: dict[str, RedisServer] = {}


def session_url() -> str:
    """The URL of the session's Redis server: `GRAPHRT_TEST_REDIS_URL`, or a throwaway server started now."""
    url = os.environ.get(ENV_URL)
    if url:
        return url
    if "server" not in _session:
        server = RedisServer(require_redis_server_binary())
        server.start()
        _session["server"] = server
    return _session["server"].url


def stop_session_server() -> None:
    """Stop the throwaway server, if one was started (at the end of the test session)."""
    server = _session.pop("server", None)
    if server is not None:
        server.close()


def fresh_url() -> str:
    """The session server's URL, its database flushed so the caller starts empty."""
    import redis

    url = session_url()
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()
    return url


async def close_async_redis(saver: Any, client: Any) -> None:
    """Close an `AsyncRedisSaver` (the sync client its sync methods may have opened) and its asyncio client."""
    async with saver:
        pass
    await client.aclose()


@pytest.fixture(scope="session", autouse=True)
def _redis_session_server() -> Iterator[None]:
    """Stops the session's Redis server at the end (started on first use)."""
    yield
    stop_session_server()


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    """The URL of the session's Redis server."""
    return session_url()


@pytest.fixture
def redis_url() -> str:
    """The session server's URL, its database flushed before the test, so each test starts empty."""
    return fresh_url()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A server only this test uses, which it may stop, kill or restart."""
    with private_server() as server:
        yield server

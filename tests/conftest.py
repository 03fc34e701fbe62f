"""Fixtures every suite may use: the Redis server (see `_redis_server`)."""

from _redis_server import _redis_session_server, private_redis, redis_server_url, redis_url

__all__ = ("_redis_session_server", "private_redis", "redis_server_url", "redis_url")

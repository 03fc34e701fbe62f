"""Fixtures every suite may use: the Redis server (see `_redis_server`)."""

from _redis_server import private_redis, redis_server_url, redis_url

__all__ = ("private_redis", "redis_server_url", "redis_url")

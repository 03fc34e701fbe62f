"""HTTP for provider clients: JSON POSTs and server-sent-event streams over httpx, with retries and safe errors.

Retries are a decision (`RetryPolicy.delay`) separate from the sleeping. API keys live in `Secret`s and are
scrubbed from every error message built here.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    import httpx

__all__ = (
    "APIConnectionError",
    "APIStatusError",
    "ChatModelError",
    "HttpClient",
    "MalformedResponseError",
    "MissingAPIKeyError",
    "RateLimitError",
    "RetryPolicy",
    "Secret",
)

logger = logging.getLogger("graphrt.models")

_RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
_MAX_DETAIL = 300


class ChatModelError(Exception):
    """A provider call failed."""


class MissingAPIKeyError(ChatModelError, ValueError):
    """No API key was given and its environment variable is not set."""

    def __init__(self, provider: str, env_var: str) -> None:
        self.provider, self.env_var = provider, env_var
        super().__init__(
            f"No API key for {provider}: set the {env_var} environment variable or pass api_key=... "
            f"to the model (e.g. init_chat_model(..., api_key=...))."
        )


class APIStatusError(ChatModelError):
    """The provider answered with an HTTP error status (after any retries)."""

    def __init__(self, provider: str, status_code: int, url: str, detail: str, attempts: int) -> None:
        self.provider, self.status_code, self.url, self.detail = provider, status_code, url, detail
        tried = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(f"{provider} API returned HTTP {status_code} for POST {url}{tried}: {detail}")


class RateLimitError(APIStatusError):
    """HTTP 429 that outlasted the retries."""


class APIConnectionError(ChatModelError):
    """The provider could not be reached, or did not answer in time (after any retries)."""


class MalformedResponseError(ChatModelError):
    """The provider answered, but not in the shape its API documents."""

    def __init__(self, provider: str, problem: str, body: str) -> None:
        self.provider = provider
        super().__init__(f"{provider} API returned a response graphrt cannot read ({problem}): {body[:_MAX_DETAIL]!r}")


class Secret:
    """A value (an API key) that never shows in `repr`, `str` or errors."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to retry a failed request and how long to wait first."""

    max_retries: int = 2
    """Retries after the first attempt."""
    base_delay: float = 0.5
    max_delay: float = 30.0
    """Cap on any wait, including one asked for by `Retry-After`."""

    def delay(self, attempt: int, status: int | None, headers: Mapping[str, str] | None) -> float | None:
        """Seconds to wait before retrying after failed attempt number `attempt` (1-based), or None to stop.

        `status` is None for a connection error or timeout; those are retried like 5xx.
        """
        if attempt > self.max_retries or (status is not None and status not in _RETRY_STATUS):
            return None
        asked = _retry_after(headers or {})
        if asked is not None:
            return min(asked, self.max_delay)
        backoff = self.base_delay * 2 ** (attempt - 1)
        return float(min(backoff * (0.75 + random.random() / 2), self.max_delay))


def _retry_after(headers: Mapping[str, str]) -> float | None:
    lower = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lower:
        try:
            return max(float(lower["retry-after-ms"]) / 1000, 0.0)
        except ValueError:
            pass
    value = lower.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if value else None
        return None if when is None else max(when.timestamp() - time.time(), 0.0)


def _httpx() -> Any:
    try:
        import httpx
    except ImportError as exc:
        raise ImportError("graphrt's chat model clients need httpx: pip install 'graphrt[models]'") from exc
    return httpx


class HttpClient:
    """POSTs JSON to one provider's API and reads JSON or server-sent events back."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        *,
        secrets: tuple[Secret, ...] = (),
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.httpx = _httpx()
        self.provider, self.base_url = provider, base_url.rstrip("/")
        self.headers, self.secrets = dict(headers), secrets
        self.timeout, self.retry = timeout, retry or RetryPolicy()
        self._client: httpx.Client | None = None

    def _scrub(self, text: str) -> str:
        for secret in self.secrets:
            if secret.reveal():
                text = text.replace(secret.reveal(), "**********")
        return text

    def _sync_client(self) -> httpx.Client:
        if self._client is None:
            self._client = self.httpx.Client(timeout=self.timeout)
        return self._client

    # ------------------------------------------------------------ sync

    def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST `body` and return the JSON object answered."""
        url = self.base_url + path
        response = self._send(url, body, stream=False)
        try:
            return self._json(response.read(), url)
        finally:
            response.close()

    def stream_events(self, path: str, body: dict[str, Any]) -> Iterator[tuple[str | None, str]]:
        """POST `body` and yield the `(event, data)` pairs of the server-sent-event stream answered."""
        url = self.base_url + path
        response = self._send(url, body, stream=True)
        try:
            yield from _parse_sse(self._lines(response, url))
        finally:
            response.close()

    def _send(self, url: str, body: dict[str, Any], *, stream: bool) -> httpx.Response:
        client, attempt = self._sync_client(), 0
        while True:
            attempt += 1
            try:
                request = client.build_request("POST", url, json=body, headers=self.headers)
                response = client.send(request, stream=stream)
            except self.httpx.TransportError as exc:
                delay = self.retry.delay(attempt, None, None)
                if delay is None:
                    raise self._connection_error(exc, url, attempt) from None
                self._log_retry(url, type(exc).__name__, delay, attempt)
                time.sleep(delay)
                continue
            if response.status_code < 400:
                return response
            detail = response.read()
            response.close()
            delay = self.retry.delay(attempt, response.status_code, response.headers)
            if delay is None:
                raise self._status_error(response.status_code, url, detail, attempt)
            self._log_retry(url, f"HTTP {response.status_code}", delay, attempt)
            time.sleep(delay)

    def _lines(self, response: httpx.Response, url: str) -> Iterator[str]:
        try:
            yield from response.iter_lines()
        except self.httpx.TransportError as exc:
            raise self._connection_error(exc, url, 1) from None

    # ------------------------------------------------------------ async

    async def apost_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Async twin of `post_json`."""
        url = self.base_url + path
        async with self.httpx.AsyncClient(timeout=self.timeout) as client:
            response = await self._asend(client, url, body, stream=False)
            try:
                return self._json(await response.aread(), url)
            finally:
                await response.aclose()

    async def astream_events(self, path: str, body: dict[str, Any]) -> AsyncIterator[tuple[str | None, str]]:
        """Async twin of `stream_events`."""
        url = self.base_url + path
        async with self.httpx.AsyncClient(timeout=self.timeout) as client:
            response = await self._asend(client, url, body, stream=True)
            try:
                parser = _SseParser()
                try:
                    async for line in response.aiter_lines():
                        event = parser.feed(line)
                        if event is not None:
                            yield event
                except self.httpx.TransportError as exc:
                    raise self._connection_error(exc, url, 1) from None
                event = parser.feed("")
                if event is not None:
                    yield event
            finally:
                await response.aclose()

    async def _asend(self, client: httpx.AsyncClient, url: str, body: dict[str, Any], *, stream: bool) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                request = client.build_request("POST", url, json=body, headers=self.headers)
                response = await client.send(request, stream=stream)
            except self.httpx.TransportError as exc:
                delay = self.retry.delay(attempt, None, None)
                if delay is None:
                    raise self._connection_error(exc, url, attempt) from None
                self._log_retry(url, type(exc).__name__, delay, attempt)
                await anyio.sleep(delay)
                continue
            if response.status_code < 400:
                return response
            detail = await response.aread()
            await response.aclose()
            delay = self.retry.delay(attempt, response.status_code, response.headers)
            if delay is None:
                raise self._status_error(response.status_code, url, detail, attempt)
            self._log_retry(url, f"HTTP {response.status_code}", delay, attempt)
            await anyio.sleep(delay)

    # ------------------------------------------------------------ errors

    def _json(self, raw: bytes, url: str) -> dict[str, Any]:
        try:
            data = json.loads(raw)
        except ValueError:
            raise MalformedResponseError(self.provider, f"not JSON, from {url}", self._scrub(_text(raw))) from None
        if not isinstance(data, dict):
            raise MalformedResponseError(self.provider, "expected a JSON object", self._scrub(_text(raw)))
        return data

    def _status_error(self, status: int, url: str, raw: bytes, attempts: int) -> APIStatusError:
        detail = _text(raw)
        try:
            parsed = json.loads(raw)
            error = parsed.get("error") if isinstance(parsed, dict) else None
            message = error.get("message") if isinstance(error, dict) else error
            if isinstance(message, str):
                detail = message
        except ValueError:
            pass
        cls = RateLimitError if status == 429 else APIStatusError
        return cls(self.provider, status, url, self._scrub(detail[:_MAX_DETAIL]), attempts)

    def _connection_error(self, exc: Exception, url: str, attempts: int) -> APIConnectionError:
        tried = f" after {attempts} attempts" if attempts > 1 else ""
        what = "timed out" if isinstance(exc, self.httpx.TimeoutException) else "failed"
        return APIConnectionError(
            self._scrub(f"{self.provider} API request to {url} {what}{tried}: {type(exc).__name__}: {exc}")
        )

    def _log_retry(self, url: str, why: str, delay: float, attempt: int) -> None:
        logger.info(
            "%s: retrying POST %s after %s in %.2fs (retry %d of %d)",
            self.provider,
            url,
            why,
            delay,
            attempt,
            self.retry.max_retries,
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


class _SseParser:
    """Turns the lines of a `text/event-stream` into `(event, data)` pairs (data lines joined by newlines)."""

    def __init__(self) -> None:
        self.event: str | None = None
        self.data: list[str] = []

    def feed(self, line: str) -> tuple[str | None, str] | None:
        line = line.rstrip("\r")
        if line == "":
            if not self.data and self.event is None:
                return None
            out = (self.event, "\n".join(self.data))
            self.event, self.data = None, []
            return out
        if line.startswith(":"):
            return None  # a comment (keep-alive)
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self.event = value
        elif field == "data":
            self.data.append(value)
        return None


def _parse_sse(lines: Iterator[str]) -> Iterator[tuple[str | None, str]]:
    parser = _SseParser()
    for line in lines:
        event = parser.feed(line)
        if event is not None:
            yield event
    event = parser.feed("")
    if event is not None:
        yield event

"""Limits the service puts on its clients: the size of a request body, and anonymous requests per minute."""

from __future__ import annotations

import math
import threading
import time

from fastapi.responses import JSONResponse

MAX_BODY_BYTES = 1_000_000


class BodyLimitMiddleware:
    """Refuses (413) a request body over ``limit`` bytes, by its Content-Length and by counting the
    stream (a chunked body has no length), before any route sees it."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.limit
            except ValueError:
                return await _send_error(send, 400, "content-length: not an integer")
            if too_big:
                return await _send_error(send, 413, f"body: over the limit of {self.limit} bytes")
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body = message.get("body", b"")
            total += len(body)
            if total > self.limit:
                return await _send_error(send, 413, f"body: over the limit of {self.limit} bytes")
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replay = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        sent = False

        async def replay_receive():
            nonlocal sent
            if not sent:
                sent = True
                return replay
            return await receive()

        return await self.app(scope, replay_receive, send)


async def _send_error(send, status: int, detail: str) -> None:
    body = JSONResponse({"detail": detail}, status_code=status).body
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class RateLimit:
    """A token bucket per client: ``per_minute`` requests a minute, in bursts of up to ``per_minute``.

    :meth:`take` returns 0 when the client may go on, else the seconds until it may.
    """

    def __init__(self, per_minute: int, clock=time.monotonic, max_clients: int = 100_000):
        self.per_minute = per_minute
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, time)
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        now = self.clock()
        rate = self.per_minute / 60.0
        with self._lock:
            tokens, then = self._buckets.get(client, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - then) * rate)
            if tokens < 1.0:
                self._buckets[client] = (tokens, now)
                return (1.0 - tokens) / rate
            if len(self._buckets) >= self.max_clients and client not in self._buckets:
                self._buckets.clear()  # a flood of addresses: start over rather than grow without end
            self._buckets[client] = (tokens - 1.0, now)
            return 0.0

    @staticmethod
    def retry_after(seconds: float) -> str:
        return str(max(1, math.ceil(seconds)))

"""A stand-in OpenAI-compatible model server on 127.0.0.1, for tests of the provider path."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

CHUNKS = ["Hello", " from", " the", " stand-in", " model."]


@dataclass
class StandIn:
    """An OpenAI-compatible ``/v1/chat/completions`` that streams `CHUNKS` slowly.

    ``mode``: ``stream`` (the chunks, then ``[DONE]``), ``endless`` (a chunk every ``interval``
    until the client leaves), ``fail`` (HTTP 500), ``stream-error`` (an error event after one
    chunk), ``json`` (one non-streamed JSON answer), ``echo-key`` (a 401 whose body quotes the
    Authorization header).
    """

    mode: str = "stream"
    interval: float = 0.05
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    sent: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(await request.json())
        self.headers.append(dict(request.headers))
        if self.mode == "fail":
            return web.json_response({"error": {"message": "boom: the GPU caught fire"}},
                                     status=500)
        if self.mode == "echo-key":
            return web.Response(status=401, text=f"bad key {request.headers['Authorization']}")
        if self.mode == "json":
            return web.json_response({"choices": [{"message": {"content": "One piece."}}]})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            await self._write(response, {"choices": [{"delta": {"role": "assistant"}}]})
            index = 0
            while self.mode == "endless" or index < len(CHUNKS):
                await asyncio.sleep(self.interval)
                if self.mode == "stream-error" and index == 1:
                    await self._write(response, {"error": {"message": "model overloaded"}})
                    return response
                text = CHUNKS[index % len(CHUNKS)]
                await self._write(response, {"choices": [{"delta": {"content": text}}]})
                self.sent += 1
                index += 1
            await response.write(b": a comment line\n\ndata: [DONE]\n\n")
        except ConnectionError:
            self.closed.set()
        return response

    @staticmethod
    async def _write(response: web.StreamResponse, data: dict[str, Any]) -> None:
        await response.write(f"data: {json.dumps(data)}\n\n".encode())


@contextlib.asynccontextmanager
async def serve_stand_in(**options: Any) -> AsyncIterator[StandIn]:
    """Serve a `StandIn` at ``<url>/chat/completions`` until the block ends."""
    model = StandIn(**options)
    app = web.Application()
    app.router.add_post("/v1/chat/completions", model.handle)
    runner = web.AppRunner(app, handler_cancellation=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    model.url = f"http://127.0.0.1:{port}/v1"
    try:
        yield model
    finally:
        await runner.cleanup()

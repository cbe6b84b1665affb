"""Answers sent as Server-Sent Events (``text/event-stream``) instead of a JSON envelope.

A handler returns an `EventStream`; the app then writes the response itself: the headers at
once, then each event as one complete ``data: <json>\\n\\n`` write (protocol.md §4: some readers
split chunks on newlines without buffering), until the stream's ``run`` returns.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from oropendola_ls.reference_backend.context import CallContext

log = logging.getLogger(__name__)

EventSender = Callable[[object], Awaitable[bool]]
"""Sends one event (a JSON value, or a string such as ``[DONE]`` as it is); False once the
caller has gone away."""


@dataclass(frozen=True, slots=True)
class EventStream:
    """What a handler returns to answer with events; ``run`` sends them."""

    run: Callable[[EventSender], Awaitable[None]]

    async def respond(self, request: web.BaseRequest, ctx: CallContext) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache, no-store",
            "X-Accel-Buffering": "no",
        })
        ctx.cookies.flush(response)
        await response.prepare(request)

        async def send(event: object) -> bool:
            if not ctx.client_connected():
                return False
            data = event if isinstance(event, str) else json.dumps(
                event, ensure_ascii=False, separators=(",", ":"))
            try:
                await response.write(f"data: {data}\n\n".encode())
            except ConnectionError:
                return False
            return True

        try:
            await self.run(send)
        except Exception:  # the status line is sent: all that is left is to log and close
            log.exception("%s: the event stream failed", ctx.method)
        if ctx.client_connected():
            with contextlib.suppress(ConnectionError):
                await response.write_eof()
        return response

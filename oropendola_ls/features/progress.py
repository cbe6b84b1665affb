"""Work-done progress on the client's token, or on one we create when the client allows it.

`WorkDone` can be used from plain (sync) callbacks: when it has to create its token first,
reports made meanwhile are held and sent, in order, once the client has answered. Without a
token it does nothing, so callers never need to check what the client supports.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

from lsprotocol import types

from oropendola_ls.server import OropendolaServer

log = logging.getLogger(__name__)


def can_create_progress(server: OropendolaServer) -> bool:
    return server.client_support.work_done_progress


class WorkDone:
    def __init__(
        self,
        server: OropendolaServer,
        title: str,
        *,
        token: types.ProgressToken | None = None,
        cancellable: bool = False,
        message: str | None = None,
    ) -> None:
        self.server = server
        self.token: types.ProgressToken | None = token
        self.ended = False
        self._held: list[Callable[[], None]] | None = None
        self._creating: asyncio.Task[None] | None = None
        if token is None and can_create_progress(server):
            self.token = f"oropendola-{uuid.uuid4()}"
            self._held = []
            self._creating = server.run_task(self._create(self.token), "progress-create")
        self._do(lambda: server.work_done_progress.begin(self._token, types.WorkDoneProgressBegin(
            title=title, cancellable=cancellable, message=message)))

    @property
    def _token(self) -> types.ProgressToken:
        assert self.token is not None
        return self.token

    async def ready(self) -> None:
        """Wait until the token exists and what was held meanwhile has been sent."""
        if self._creating is not None:
            await asyncio.shield(self._creating)

    @property
    def cancelled(self) -> bool:
        """True once the client sent ``window/workDoneProgress/cancel`` for this token."""
        if self.token is None:
            return False
        future = self.server.work_done_progress.tokens.get(self.token)
        return future is not None and future.cancelled()

    def on_cancel(self, task: asyncio.Task[Any] | None) -> Callable[[], None]:
        """Cancel ``task`` when the client cancels this progress; returns "stop watching"."""
        if task is None or self.token is None:
            return lambda: None
        loop = asyncio.get_running_loop()
        watching = True

        def cancelled(future: Any) -> None:
            if watching and future.cancelled():
                loop.call_soon_threadsafe(task.cancel)

        def attach() -> None:
            future = self.server.work_done_progress.tokens.get(self._token)
            if future is not None:
                future.add_done_callback(cancelled)

        self._do(attach)  # after `begin`, which registers the token

        def stop() -> None:
            nonlocal watching
            watching = False

        return stop

    def report(self, message: str | None = None, percentage: int | None = None) -> None:
        if self.ended:
            return
        self._do(lambda: self.server.work_done_progress.report(
            self._token, types.WorkDoneProgressReport(message=message, percentage=percentage)))

    def end(self, message: str | None = None) -> None:
        if self.ended:
            return
        self.ended = True
        self._do(lambda: self._end(message))

    def _end(self, message: str | None) -> None:
        self.server.work_done_progress.end(self._token, types.WorkDoneProgressEnd(message=message))
        # pygls registers a cancellation future per token in `begin` and never drops it: without
        # this, every progress (each chat, each indexing) would stay for the server's lifetime,
        # with the callbacks `on_cancel` attached to it (and through them the finished task).
        self.server.work_done_progress.tokens.pop(self._token, None)

    def _do(self, send: Callable[[], None]) -> None:
        if self.token is None:
            return
        if self._held is not None:
            self._held.append(send)
            return
        send()

    async def _create(self, token: types.ProgressToken) -> None:
        try:
            await self.server.work_done_progress.create_async(token)
        except (Exception, asyncio.CancelledError) as exc:
            log.debug("window/workDoneProgress/create failed: %s", exc)
            self.token, self._held = None, None
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        held, self._held = self._held or [], None
        for send in held:
            send()

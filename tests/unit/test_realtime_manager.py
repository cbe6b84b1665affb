"""RealtimeManager against small Socket.IO servers on loopback (no LSP involved).

The end-to-end behaviour (reference backend, real server process) is in tests/lsp; these cover
namespace choice against a server that is not Frappe-like.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio
from aiohttp import web

from oropendola_ls.realtime import (
    RealtimeManager,
    RealtimeOptions,
    SocketSession,
    StateChange,
)


class Recorder:
    def __init__(self) -> None:
        self.changes: list[StateChange] = []
        self.events: list[tuple[str, Any]] = []

    def connection_changed(self, change: StateChange) -> None:
        self.changes.append(change)

    def event_received(self, event: str, data: Any) -> None:
        self.events.append((event, data))

    async def wait_for(self, state: str, within: float = 10) -> StateChange:
        async def poll() -> StateChange:
            while True:
                for change in self.changes:
                    if change.state == state:
                        return change
                await asyncio.sleep(0.01)
        return await asyncio.wait_for(poll(), within)


@pytest.fixture
async def default_namespace_only() -> AsyncIterator[tuple[str, Any]]:
    """A Socket.IO server with only ``/`` (like Frappe ≤ v14 or a plain Node server)."""
    sio = socketio.AsyncServer(async_mode="aiohttp", namespaces=["/"])

    @sio.on("connect")
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        await sio.emit("hello", {"cookie": environ.get("HTTP_COOKIE")}, to=sid)

    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/", sio
    await sio.shutdown()
    await runner.cleanup()


async def test_auto_falls_back_to_the_default_namespace(
        default_namespace_only: tuple[str, Any]) -> None:
    url, _ = default_namespace_only
    recorder = Recorder()
    manager = RealtimeManager(recorder, lambda: SocketSession(url, "s3cret-sid"))
    manager.start()
    await recorder.wait_for("connected")
    assert manager.namespace == "/"
    assert [c.state for c in recorder.changes] == ["connecting", "connected"]
    await asyncio.wait_for(_until(lambda: recorder.events), 5)
    assert recorder.events[0] == ("hello", {"cookie": "sid=s3cret-sid"})
    await manager.stop()
    assert manager.state == "disconnected"


async def test_a_refused_explicit_namespace_is_an_error_not_a_retry_loop(
        default_namespace_only: tuple[str, Any]) -> None:
    url, _ = default_namespace_only
    recorder = Recorder()
    manager = RealtimeManager(recorder, lambda: SocketSession(url, "sid"),
                              RealtimeOptions(namespace="/site.example", interval=0.01))
    manager.start()
    error = await recorder.wait_for("error")
    assert error.error is not None and "namespace /site.example refused" in error.error
    assert "reconnecting" not in [c.state for c in recorder.changes]
    await manager.stop()


async def test_without_a_session_nothing_is_attempted() -> None:
    recorder = Recorder()
    manager = RealtimeManager(recorder, lambda: None)
    manager.start()
    error = await recorder.wait_for("error")
    assert error.error == "not signed in" and error.previous == "disconnected"
    assert [c.state for c in recorder.changes] == ["error"]


async def test_nothing_listening_backs_off_then_gives_up_and_retry_starts_over() -> None:
    with __import__("socket").socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    recorder = Recorder()
    manager = RealtimeManager(recorder, lambda: SocketSession(f"http://127.0.0.1:{port}/", "x"),
                              RealtimeOptions(max_attempts=3, interval=0.01))
    manager.start()
    gave_up = await recorder.wait_for("error")
    assert gave_up.error is not None and gave_up.error.startswith("gave up after 3 attempts")
    assert [c.attempt for c in recorder.changes if c.state == "reconnecting"] == [1, 2, 3]
    recorder.changes.clear()
    await manager.retry()
    await recorder.wait_for("error")
    assert [c.state for c in recorder.changes][:2] == ["connecting", "reconnecting"]
    assert recorder.changes[1].attempt == 1  # attempts started again from zero


async def _until(predicate: Any) -> None:
    while not predicate():  # noqa: ASYNC110 - polls state another task fills in
        await asyncio.sleep(0.01)

"""Socket.IO on the reference backend: Frappe's cookie authentication and user rooms."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import socketio

from oropendola_ls.reference_backend import RunningBackend

from .conftest import EMAIL, login


async def _connect(
    backend: RunningBackend, headers: dict[str, str], namespaces: list[str]
) -> tuple[Any, list[Any], asyncio.Queue[tuple[str, Any]]]:
    sio = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    for namespace in namespaces:
        sio.on("connect_error", errors.append, namespace=namespace)
        sio.on("ai_progress", lambda data, ns=namespace: events.put_nowait((ns, data)),
               namespace=namespace)
    await sio.connect(backend.url, headers=headers, namespaces=namespaces,
                      transports=["websocket"], wait_timeout=3)
    return sio, errors, events


@pytest.mark.parametrize(
    ("cookie", "reason"),
    [(None, "No cookie transmitted."), ("sid=" + "0" * 56, "Unauthorized: Error: Forbidden")],
    ids=["no-cookie", "unknown-sid"],
)
async def test_socket_without_a_valid_sid_is_refused(
    backend: RunningBackend, cookie: str | None, reason: str
) -> None:
    sio = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    sio.on("connect_error", errors.append, namespace="/127.0.0.1")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(backend.url, headers={"Cookie": cookie} if cookie else {},
                          namespaces=["/127.0.0.1"], transports=["websocket"], wait_timeout=3)
    assert errors == [{"message": reason}]
    await sio.disconnect()


async def test_socket_with_sid_joins_user_room_on_both_namespaces(
    backend: RunningBackend, client: httpx.AsyncClient
) -> None:
    sid = await login(client)
    sio, errors, events = await _connect(
        backend, {"Cookie": f"sid={sid}; system_user=yes"}, ["/", "/127.0.0.1"]
    )
    try:
        assert errors == []
        await backend.emit_to_user(EMAIL, "ai_progress", {"type": "thinking"})
        received = [await asyncio.wait_for(events.get(), 3) for _ in range(2)]
        assert sorted(received, key=lambda event: event[0]) == [
            ("/", {"type": "thinking"}),
            ("/127.0.0.1", {"type": "thinking"}),
        ]
        await backend.emit_to_user("someone.else@example.com", "ai_progress", {"type": "x"})
        await asyncio.sleep(0.1)
        assert events.empty()
    finally:
        await sio.disconnect()


async def test_socket_on_a_foreign_site_namespace_is_refused(
    backend: RunningBackend, client: httpx.AsyncClient
) -> None:
    sid = await login(client)
    sio = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    sio.on("connect_error", errors.append, namespace="/example.com")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(backend.url, headers={"Cookie": f"sid={sid}"},
                          namespaces=["/example.com"], transports=["websocket"], wait_timeout=3)
    assert errors == [{"message": "Invalid namespace"}]
    await sio.disconnect()

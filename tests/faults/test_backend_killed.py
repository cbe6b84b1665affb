"""The reference backend killed (SIGKILL) in the middle of a chat: a clear error, the server stays
up, and a retry succeeds once a backend is back on the same port with the same data."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.conftest import BackendProcess, lsp_session, request, wait_until

Starter = Callable[..., BackendProcess]


async def test_backend_killed_mid_chat_then_back(config_dir: Path, tmp_path: Path,
                                                 start_backend: Starter) -> None:
    data = tmp_path / "site"
    backend = start_backend(0, "--control", data=data)
    email, password, _ = backend.add_user()
    settings = {"serverUrl": backend.url, "reconnectInterval": 100}
    async with lsp_session("visual-studio-code", config_dir, settings) as client:
        await request(client, "oropendola/signIn", {"username": email, "password": password})
        assert (await request(client, "oropendola/chat", {"message": "warm up"}))["content"]

        backend.control("chat/hold", hold=True)
        chat = asyncio.ensure_future(request(client, "oropendola/chat",
                                             {"message": "a question the backend never answers"}))
        await wait_until(lambda: backend.control("chat/hold", hold=True)["waiting"] == 1)
        started = time.monotonic()
        backend.process.send_signal(signal.SIGKILL)
        backend.process.wait(10)

        with pytest.raises(JsonRpcException) as killed:
            await chat
        assert time.monotonic() - started < 5  # the broken connection is noticed at once
        error = killed.value
        assert error.code == types.LSPErrorCodes.RequestFailed
        assert error.data == {"kind": "backend_unavailable"}
        assert f"Cannot reach the Oropendola backend at {backend.url}" in error.message
        assert "connection broke" in error.message
        assert "Traceback" not in error.message and "File \"" not in error.message

        # The server stays up and says what it knows.
        status = await request(client, "oropendola/status")
        assert status["signedIn"] is True and status["backend"]["url"] == backend.url
        with pytest.raises(JsonRpcException) as down:
            await request(client, "oropendola/chat", {"message": "while it is down"})
        assert "connection refused" in down.value.message

        # The same site comes back on the same port: the same request now succeeds.
        again = start_backend(backend.port, "--control", data=data)
        assert again.url == backend.url
        answer = await request(client, "oropendola/chat", {"message": "is anyone there?"})
        assert "is anyone there" in answer["content"]
        await wait_until(lambda: client.connection_states[-1]["state"] == "connected",  # type: ignore[attr-defined]
                         15)

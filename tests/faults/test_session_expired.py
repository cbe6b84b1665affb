"""The session expires in the middle of a session: the next backend call fails with a clear
sign-in prompt (``data.kind``), and the user is told in a ``window/showMessage`` too, whether or
not the realtime channel was up to notice it.

tests/lsp/test_sign_in.py::test_expired_session_gives_clear_error covers the error's message,
the status and signing in again; tests/lsp/test_realtime.py covers the realtime side. This adds
the error kind, the message to the user, and a chat (the call people make most) as the call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from tests.conftest import BackendProcess, lsp_session, request, wait_until

SIGN_IN_KINDS = ("session_expired", "not_signed_in")


def sign_in_prompts(client: LanguageClient) -> list[types.ShowMessageParams]:
    return [m for m in client.messages if "sign in" in m.message.lower()
            and "oropendola-ls login" in m.message]


async def expire_then_chat(client: LanguageClient, backend: BackendProcess, email: str) -> None:
    done = backend.cli("expire-sessions", email)
    assert done.returncode == 0 and "Expired 1 session" in done.stdout
    shown = len(sign_in_prompts(client))
    with pytest.raises(JsonRpcException) as expired:
        await request(client, "oropendola/chat", {"message": "still signed in?"})
    error = expired.value
    assert error.code == types.LSPErrorCodes.RequestFailed
    assert error.data is not None and error.data["kind"] in SIGN_IN_KINDS
    assert "sign in again" in error.message and "oropendola-ls login" in error.message
    await wait_until(lambda: len(sign_in_prompts(client)) > shown, 10)
    prompt = sign_in_prompts(client)[-1]
    assert prompt.type in (types.MessageType.Warning, types.MessageType.Error)
    status = await request(client, "oropendola/status")
    assert status["signedIn"] is False and status["session"] == "expired"


async def test_expired_session_mid_session(config_dir: Path, start_backend: Any) -> None:
    backend: BackendProcess = start_backend(0, "--control")
    email, password, _ = backend.add_user()
    settings = {"serverUrl": backend.url, "reconnectInterval": 50, "maxReconnectAttempts": 1}
    async with lsp_session("helix", config_dir, settings) as client:
        # With the realtime channel up.
        await request(client, "oropendola/signIn", {"username": email, "password": password})
        await wait_until(lambda: client.connection_states[-1]["state"] == "connected")  # type: ignore[attr-defined]
        assert (await request(client, "oropendola/chat", {"message": "hello"}))["content"]
        await expire_then_chat(client, backend, email)

        # Without it (Socket.IO down, given up): the HTTP call alone must tell the user.
        await request(client, "oropendola/signIn", {"username": email, "password": password})
        await wait_until(lambda: client.connection_states[-1]["state"] == "connected")  # type: ignore[attr-defined]
        backend.control("realtime/stop")
        await wait_until(lambda: client.connection_states[-1]["state"] == "error")  # type: ignore[attr-defined]
        assert (await request(client, "oropendola/chat", {"message": "hello"}))["content"]
        await expire_then_chat(client, backend, email)

        # Signing in again recovers.
        await request(client, "oropendola/signIn", {"username": email, "password": password})
        assert (await request(client, "oropendola/chat", {"message": "back"}))["content"]

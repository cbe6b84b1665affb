"""oropendola/chat end to end: context, secrets, cancellation, the model provider path."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from tests.conftest import BackendProcess, lsp_session, request, to_json, wait_until
from tests.stand_in_model import CHUNKS, serve_stand_in

Starter = Callable[..., BackendProcess]
REQUEST_CANCELLED = -32800


async def sign_in(client: LanguageClient, backend: BackendProcess) -> None:
    email, password, _ = backend.add_user()
    await request(client, "oropendola/signIn", {"username": email, "password": password})
    await wait_until(lambda: any(s["state"] == "connected"
                                 for s in client.connection_states))  # type: ignore[attr-defined]


def reports(client: LanguageClient, token: str) -> list[str]:
    return [r.message or "" for r in client.progress_reports.get(token, [])
            if isinstance(r, types.WorkDoneProgressReport)]


def backend_bytes(backend: BackendProcess) -> bytes:
    return b"".join(p.read_bytes() for p in backend.data.rglob("*") if p.is_file())


def open_document(client: LanguageClient, path: Path, language: str = "python") -> str:
    uri = path.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=language, version=1,
                                             text=path.read_text())))
    return uri


async def test_a_secret_in_the_selection_never_reaches_the_backend(
        preset: str, config_dir: Path, backend: BackendProcess, tmp_path: Path) -> None:
    canary = f"CANARY{uuid.uuid4().hex}"
    project = tmp_path / "project"
    project.mkdir()
    source = project / "client.py"
    source.write_text(
        "import os\n\n\n"
        "def connect(host, port=5432):\n"
        f'    aws_secret_access_key = "{canary}/AbCdEfGhIjKlMnOpQrStUvWx"\n'
        f'    token = "ghp_{canary[:30]}abcdefghij"\n'
        "    return host, port\n")
    async with lsp_session(preset, config_dir, {"serverUrl": backend.url},
                           folders=[project]) as client:
        await sign_in(client, backend)
        uri = open_document(client, source)
        selection = {"start": {"line": 3, "character": 0}, "end": {"line": 7, "character": 0}}
        answer = await request(client, "oropendola/chat", {
            "message": "Explain this function", "textDocument": {"uri": uri},
            "range": selection})
        assert "connect" in answer["content"]  # the offline engine read the selection

        preview = to_json(await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="oropendola.previewContext", arguments=[{"uri": uri, "range": selection}])))
        active = preview["context"]["activeFile"]
        assert active["relativePath"] == "client.py" and active["language"] == "python"
        assert "[REDACTED:" in active["selectedText"] and canary not in active["selectedText"]
        assert preview["redactions"]
        shown = Path(preview["uri"].removeprefix("file://"))
        text, mode = shown.read_text(), shown.stat().st_mode  # noqa: ASYNC240
        assert text.strip().startswith("{") and not mode & 0o222

        # A secret file contributes its name only.
        env = project / ".env"
        env.write_text(f"API_TOKEN={canary}\n")
        env_uri = open_document(client, env, "dotenv")
        await request(client, "oropendola/chat", {"message": "What is in here?",
                                                  "textDocument": {"uri": env_uri}})
    assert canary.encode() not in backend_bytes(backend)


async def test_cancel_mid_stream_is_quick_and_the_next_chat_works(
        preset: str, config_dir: Path, start_backend: Starter) -> None:
    backend = start_backend(0, "--control", "--stream-interval", "0.05")
    async with lsp_session(preset, config_dir, {"serverUrl": backend.url}) as client:
        await sign_in(client, backend)
        token = "cancel-me"
        client.progress_reports.setdefault(token, [])
        long_prompt = "tell me everything " * 40
        pending = asyncio.ensure_future(client.protocol.send_request_async(
            "oropendola/chat", {"message": long_prompt, "workDoneToken": token},
            msg_id="chat-to-cancel"))
        await wait_until(lambda: len(reports(client, token)) >= 3)
        cancelled_at = time.monotonic()
        client.protocol.notify("$/cancelRequest", types.CancelParams(id="chat-to-cancel"))
        with pytest.raises(JsonRpcException) as cancelled:
            await asyncio.wait_for(pending, 5)
        assert time.monotonic() - cancelled_at < 0.2
        assert cancelled.value.code == REQUEST_CANCELLED
        seen = len(client.progress_reports[token])
        await asyncio.sleep(0.5)
        assert len(client.progress_reports[token]) <= seen + 1  # at most the end

        second = "second-token"
        client.progress_reports.setdefault(second, [])
        pending = asyncio.ensure_future(client.protocol.send_request_async(
            "oropendola/chat", {"message": long_prompt, "workDoneToken": second}))
        await wait_until(lambda: len(reports(client, second)) >= 3)
        client.protocol.notify("window/workDoneProgress/cancel",
                               types.WorkDoneProgressCancelParams(token=second))
        with pytest.raises(JsonRpcException) as by_progress:
            await asyncio.wait_for(pending, 5)
        assert by_progress.value.code == REQUEST_CANCELLED

        answer = await request(client, "oropendola/chat", {"message": "short question"})
        assert "short question" in answer["content"]
        # Ended progress is forgotten (pygls keeps every token's future unless told): a
        # long-running server does not grow by one entry per chat.
        info = await request(client, "oropendola/debugInfo")
        assert info["progressTokens"] == 0 and info["waitingChats"] == 0


async def test_the_model_provider_streams_and_cancels(
        config_dir: Path, start_backend: Starter) -> None:
    async with serve_stand_in(interval=0.05) as model:
        backend = start_backend(0, "--control", "--llm-base-url", model.url,
                                "--llm-model", "stand-in")
        async with lsp_session("visual-studio-code", config_dir,
                               {"serverUrl": backend.url}) as client:
            await sign_in(client, backend)
            token = "model-chat"
            client.progress_reports.setdefault(token, [])
            answer = await request(client, "oropendola/chat",
                                   {"message": "hello model", "workDoneToken": token})
            assert answer["content"] == "".join(CHUNKS)
            streamed = [m for m in reports(client, token) if m in CHUNKS]
            assert len(streamed) >= 3 and "".join(streamed) == answer["content"]
            assert model.requests[-1]["messages"][-1]["content"] == "hello model"

            model.mode = "endless"
            pending = asyncio.ensure_future(client.protocol.send_request_async(
                "oropendola/chat", {"message": "never ending"}, msg_id="endless-chat"))
            await wait_until(lambda: model.sent >= len(CHUNKS) + 3)
            client.protocol.notify("$/cancelRequest", types.CancelParams(id="endless-chat"))
            with pytest.raises(JsonRpcException):
                await asyncio.wait_for(pending, 5)
            await asyncio.wait_for(model.closed.wait(), 5)  # the upstream stream was closed


async def test_chat_streams_over_server_sent_events_where_the_backend_offers_them(
        preset: str, config_dir: Path, backend: BackendProcess, tmp_path: Path) -> None:
    log_file = tmp_path / "server.log"
    settings = {"serverUrl": backend.url, "realtimeNamespace": "/nowhere.example"}
    async with lsp_session(preset, config_dir, settings,
                           args=("-v", "--log-file", str(log_file))) as client:
        email, password, _ = backend.add_user()
        await request(client, "oropendola/signIn", {"username": email, "password": password})
        await wait_until(lambda: any(s["state"] == "error"  # no realtime channel at all
                                     for s in client.connection_states))  # type: ignore[attr-defined]
        token = "sse-chat"
        client.progress_reports.setdefault(token, [])
        answer = await request(client, "oropendola/chat",
                               {"message": "stream this over plain HTTP please",
                                "workDoneToken": token})
        deltas = [m for m in reports(client, token) if m != "Thinking…"]
        assert len(deltas) >= 3 and "".join(deltas) == answer["content"]
        history = await request(client, "oropendola/history",
                                {"conversationId": answer["conversationId"]})
        assert history["messages"][-1]["content"] == answer["content"]
    assert "streamed over Server-Sent Events (chat.stream)" in log_file.read_text()

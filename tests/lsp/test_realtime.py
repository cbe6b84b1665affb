"""The realtime channel end to end: the real server process, the reference backend's Socket.IO.

Status changes arrive as ``oropendola/connectionStatus`` and as standard LSP; ``ai_progress`` is
reported on the owning request's token; ``msgprint`` is shown; ``eval_js`` is never run.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.conftest import BackendProcess, lsp_session, request, wait_until

Starter = Callable[..., BackendProcess]


def states(client: LanguageClient) -> list[dict[str, Any]]:
    return client.connection_states  # type: ignore[attr-defined, no-any-return]


def state_names(client: LanguageClient) -> list[str]:
    return [s["state"] for s in states(client)]


async def wait_for_state(client: LanguageClient, state: str, after: int = 0,
                         within: float = 15.0) -> dict[str, Any]:
    await wait_until(lambda: state in state_names(client)[after:], within)
    return next(s for s in states(client)[after:] if s["state"] == state)


async def signed_in(client: LanguageClient, backend: BackendProcess) -> str:
    email, password, _ = backend.add_user()
    await request(client, "oropendola/signIn", {"username": email, "password": password})
    return email


def messages(client: LanguageClient) -> list[str]:
    return [m.message for m in client.messages]


def text_reports(client: LanguageClient, token: str) -> list[str]:
    return [r.message or "" for r in client.progress_reports.get(token, [])
            if isinstance(r, types.WorkDoneProgressReport)]


async def test_connects_after_sign_in_and_disconnects_on_sign_out(
        preset: str, config_dir: Path, backend: BackendProcess) -> None:
    async with lsp_session(preset, config_dir, {"serverUrl": backend.url}) as client:
        # No session: "not signed in", and no connection attempt.
        await wait_for_state(client, "error")
        assert states(client)[0]["error"] == "not signed in"
        assert "connecting" not in state_names(client)

        await signed_in(client, backend)
        connected = await wait_for_state(client, "connected")
        assert connected["previousState"] == "connecting"
        assert connected["attempt"] == 0 and connected["maxAttempts"] == 10
        status = await request(client, "oropendola/status")
        assert status["connection"]["state"] == "connected"
        assert status["connection"]["namespace"] == "/127.0.0.1"  # Frappe v15's site namespace

        # The same transitions as standard LSP progress, for clients without custom methods.
        progress_ends = [r for reports in client.progress_reports.values() for r in reports
                         if isinstance(r, types.WorkDoneProgressEnd)]
        if preset == "visual-studio-code" or progress_ends:
            assert any("Connected to 127.0.0.1" in (r.message or "") for r in progress_ends)

        seen = len(states(client))
        await request(client, "oropendola/signOut")
        await wait_for_state(client, "disconnected", after=seen)
        await asyncio.sleep(0.5)
        assert "reconnecting" not in state_names(client)[seen:]  # our own disconnect


async def test_backoff_follows_the_schedule_gives_up_and_manual_retry_connects(
        preset: str, config_dir: Path, start_backend: Starter) -> None:
    backend = start_backend(0, "--control")
    settings = {"serverUrl": backend.url, "reconnectInterval": 100, "maxReconnectAttempts": 4}
    async with lsp_session(preset, config_dir, settings) as client:
        await signed_in(client, backend)
        await wait_for_state(client, "connected")
        seen = len(states(client))
        assert backend.control("realtime/stop")["running"] is False

        gave_up = await wait_for_state(client, "error", after=seen, within=20)
        attempts = [s for s in states(client)[seen:] if s["state"] == "reconnecting"]
        assert [s["attempt"] for s in attempts] == [1, 2, 3, 4]
        assert [s["delayMs"] for s in attempts] == [100, 200, 400, 800]
        # Each attempt starts after the delay announced by the previous one (loopback refusals
        # take a few ms; allow for a loaded machine).
        for before, after in itertools.pairwise(attempts):
            waited = after["at"] - before["at"]
            assert before["delayMs"] / 1000 * 0.9 <= waited <= before["delayMs"] / 1000 + 1.0
        assert gave_up["error"].startswith("gave up after 4 attempts")
        await wait_until(lambda: any("oropendola.reconnect" in m for m in messages(client)))
        status = await request(client, "oropendola/status")
        assert status["connection"]["state"] == "error"
        assert status["connection"]["lastError"].startswith("gave up after 4 attempts")

        # Quiet while nothing changes: no more attempts, no more messages.
        shown = len(client.messages)
        await asyncio.sleep(1.0)
        assert len(client.messages) == shown and state_names(client)[-1] == "error"

        backend.control("realtime/start")
        seen = len(states(client))
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="oropendola.reconnect"))
        connected = await wait_for_state(client, "connected", after=seen)
        assert connected["attempt"] == 0
        await wait_until(lambda: any("is back" in m for m in messages(client)))


async def test_reconnects_after_server_and_transport_drops(
        preset: str, config_dir: Path, start_backend: Starter) -> None:
    backend = start_backend(0, "--control")
    settings = {"serverUrl": backend.url, "reconnectInterval": 50}
    async with lsp_session(preset, config_dir, settings) as client:
        await signed_in(client, backend)
        await wait_for_state(client, "connected")
        for how in ("server", "transport"):
            seen = len(states(client))
            assert backend.control("realtime/drop", how=how)["dropped"] == 1
            reconnecting = await wait_for_state(client, "reconnecting", after=seen)
            assert reconnecting["attempt"] == 1 and reconnecting["delayMs"] == 50
            await wait_for_state(client, "connected", after=seen)
        status = await request(client, "oropendola/status")
        assert status["connection"] == {**status["connection"], "state": "connected",
                                        "reconnectAttempts": 0}


async def test_twenty_restarts_come_back_without_leaks(
        config_dir: Path, start_backend: Starter) -> None:
    backend = start_backend(0, "--control")
    settings = {"serverUrl": backend.url, "reconnectInterval": 50}
    async with lsp_session("visual-studio-code", config_dir, settings) as client:
        await signed_in(client, backend)
        await wait_for_state(client, "connected")
        await asyncio.sleep(0.3)  # let the first connection's helpers settle
        before = await request(client, "oropendola/debugInfo")
        for _ in range(20):
            seen = len(states(client))
            backend.control("realtime/stop")
            await wait_for_state(client, "reconnecting", after=seen)
            backend.control("realtime/start")
            await wait_for_state(client, "connected", after=seen)
        assert backend.control("realtime/status")["clients"] == 1
        await asyncio.sleep(0.3)
        after = await request(client, "oropendola/debugInfo")
        assert after["realtime"]["state"] == "connected"
        assert after["asyncioTasks"] <= before["asyncioTasks"]
        if before["sockets"] is not None:
            assert after["sockets"] <= before["sockets"]
            assert after["openFiles"] <= before["openFiles"]


async def test_expired_session_while_connected_stops_without_a_reconnect_loop(
        preset: str, config_dir: Path, start_backend: Starter) -> None:
    backend = start_backend(0, "--control")
    settings = {"serverUrl": backend.url, "reconnectInterval": 50}
    async with lsp_session(preset, config_dir, settings) as client:
        await signed_in(client, backend)
        await wait_for_state(client, "connected")
        assert backend.cli("expire-sessions").returncode == 0
        seen = len(states(client))
        backend.control("realtime/drop")
        error = await wait_for_state(client, "error", after=seen)
        assert error["error"].startswith("not signed in")
        await asyncio.sleep(0.5)
        assert state_names(client)[seen:].count("reconnecting") <= 1
        assert state_names(client)[-1] == "error"
        await wait_until(lambda: any("Sign in again" in m for m in messages(client)))
        status = await request(client, "oropendola/status")
        assert status["signedIn"] is False


async def test_ai_progress_reaches_the_right_chat(
        preset: str, config_dir: Path, backend: BackendProcess) -> None:
    settings = {"serverUrl": backend.url, "chatTransport": "realtime"}
    async with lsp_session(preset, config_dir, settings) as client:
        await signed_in(client, backend)
        await wait_for_state(client, "connected")
        first, second = "first-token", "second-token"
        client.progress_reports.setdefault(first, [])
        client.progress_reports.setdefault(second, [])
        one, two = await asyncio.gather(
            request(client, "oropendola/chat",
                    {"message": "apples and pears for the first chat",
                     "workDoneToken": first}),
            request(client, "oropendola/chat",
                    {"message": "plums and cherries for the second chat",
                     "workDoneToken": second}),
        )
        for token, answer in ((first, one), (second, two)):
            reports = client.progress_reports[token]
            assert isinstance(reports[0], types.WorkDoneProgressBegin)
            assert isinstance(reports[-1], types.WorkDoneProgressEnd)
            deltas = text_reports(client, token)
            assert len(deltas) >= 3
            streamed = "".join(d for d in deltas if d not in ("Thinking…",)
                               and not d.startswith("Step "))
            assert streamed == answer["content"]
        assert "apples" in one["content"] and "plums" not in one["content"]
        assert "plums" in two["content"] and "apples" not in two["content"]


async def test_msgprint_is_shown_and_eval_js_is_never_run(
        preset: str, config_dir: Path, backend: BackendProcess, tmp_path: Path) -> None:
    trace = tmp_path / "eval-js-ran"
    async with lsp_session(preset, config_dir, {"serverUrl": backend.url}) as client:
        email = await signed_in(client, backend)
        await wait_for_state(client, "connected")
        payloads = [
            f"require('fs').writeFileSync({str(trace)!r}, 'ran')",
            f"__import__('pathlib').Path({str(trace)!r}).write_text('ran')",
            f"touch {trace}",
        ]
        for code in payloads:
            backend.control("emit", user=email, event="eval_js", data=code)
        backend.control("emit", user=email, event="msgprint", data="Plain notice")
        backend.control("emit", user=email, event="msgprint",
                        data={"message": "Quota almost used", "title": "Billing",
                              "indicator": "red"})
        await wait_until(lambda: sum("Oropendola:" in m for m in messages(client)
                                     if "notice" in m or "Quota" in m) == 2)
        shown = {m.message: m.type for m in client.messages}
        assert shown["Oropendola: Plain notice"] == types.MessageType.Info
        assert shown["Oropendola: Billing: Quota almost used"] == types.MessageType.Error
        await asyncio.sleep(0.3)
        assert not trace.exists()
        assert not any("ran" in m or "writeFileSync" in m for m in messages(client))


async def test_namespace_setting(preset: str, config_dir: Path, backend: BackendProcess) -> None:
    settings = {"serverUrl": backend.url, "realtimeNamespace": "/"}
    async with lsp_session(preset, config_dir, settings) as client:
        await signed_in(client, backend)
        await wait_for_state(client, "connected")
        assert (await request(client, "oropendola/status"))["connection"]["namespace"] == "/"

        seen = len(states(client))
        changed = {**settings, "realtimeNamespace": "/nowhere.example"}
        client.set_configuration(changed, section="oropendola")  # for clients that pull
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"oropendola": changed}))
        error = await wait_for_state(client, "error", after=seen)
        assert "namespace /nowhere.example refused" in error["error"]
        assert "reconnecting" not in state_names(client)[seen:]
        await wait_until(lambda: any("/nowhere.example" in m for m in messages(client)))


async def test_chat_answer_is_complete_when_the_socket_drops_mid_answer(
        preset: str, config_dir: Path, start_backend: Starter) -> None:
    backend = start_backend(0, "--control", "--stream-interval", "0.05")
    settings = {"serverUrl": backend.url, "reconnectInterval": 2000, "chatTransport": "realtime"}
    async with lsp_session(preset, config_dir, settings) as client:
        await signed_in(client, backend)
        await wait_for_state(client, "connected")
        token = "dropped-chat"
        client.progress_reports.setdefault(token, [])
        chat = asyncio.ensure_future(request(client, "oropendola/chat", {
            "message": "a long enough question to stream over several deltas",
            "workDoneToken": token}))
        await wait_until(lambda: len(text_reports(client, token)) >= 4)
        backend.control("realtime/drop", how="transport")
        answer = await chat
        assert "a long enough question" in answer["content"]
        streamed = "".join(text_reports(client, token))
        assert len(streamed) < len(answer["content"])  # the stream was cut short...
        assert isinstance(client.progress_reports[token][-1], types.WorkDoneProgressEnd)

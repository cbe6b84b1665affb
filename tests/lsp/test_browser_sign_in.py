"""The published app's browser sign-in, end to end: the real server, a real reference backend,
and the sign-in page completed over HTTP the way a person completes it in a browser.

Also what the access token is then used for (the agent chat, profile and plan in status), what
happens when it is revoked or refreshed away, the agent's in-band errors, and how the server
finds out which endpoint names the backend answers when the ``profile`` setting is unset.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcRequestCancelled
from pytest_lsp import LanguageClient

from tests.conftest import (
    BackendProcess,
    client_capabilities,
    lsp_session,
    request,
    start_backend_process,
    to_json,
    wait_until,
)
from tests.sign_in_page import complete_sign_in, stored_entry, url_in

REQUEST_FAILED = types.LSPErrorCodes.RequestFailed
POLL = "0.1"
API = "oropendola_ai.oropendola_ai.api"
TOKEN = re.compile(r"^[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendProcess]:
    """A backend that answers only the published app's names, polled every 0.1 s."""
    proc = start_backend_process(tmp_path_factory.mktemp("published"), 0, "--control",
                                 "--profile", "oropendola_ai", "--auth-poll-interval", POLL)
    yield proc
    proc.stop()


def log_args(config_dir: Path) -> tuple[str, ...]:
    return ("-vv", "--log-file", str(config_dir / "server.log"))


def server_log(config_dir: Path) -> str:
    return (config_dir / "server.log").read_text(encoding="utf-8")


def progress_texts(client: LanguageClient) -> list[str]:
    return [getattr(r, "message", None) or "" for reports in client.progress_reports.values()
            for r in reports]


def sign_in_url(client: LanguageClient, seen: frozenset[str] = frozenset()) -> str | None:
    """The sign-in page's URL, as a user without showDocument finds it: in a message or in a
    progress report (the latest one not in ``seen``)."""
    for text in reversed([m.message for m in client.messages] + progress_texts(client)):
        url = url_in(text)
        if url is not None and url not in seen:
            return url
    return None


def urls_shown(client: LanguageClient) -> frozenset[str]:
    texts = [m.message for m in client.messages] + progress_texts(client)
    return frozenset(u for u in map(url_in, texts) if u is not None)


async def start_sign_in(client: LanguageClient, msg_id: str = "sign-in") -> asyncio.Future[Any]:
    return asyncio.ensure_future(client.protocol.send_request_async(
        "oropendola/signIn", {"method": "browser"}, msg_id=msg_id))


async def browser_sign_in(client: LanguageClient, backend: BackendProcess, email: str,
                          password: str) -> dict[str, Any]:
    """Sign in with the browser from ``client``; returns the request's result."""
    seen = urls_shown(client)
    pending = await start_sign_in(client)
    await wait_until(lambda: sign_in_url(client, seen) is not None)
    url = sign_in_url(client, seen)
    assert url is not None and url.startswith(backend.url)
    page = await asyncio.to_thread(complete_sign_in, url, email, password)
    assert page.status_code == 200 and "/vscode-auth-success" in str(page.url)
    return dict(to_json(await asyncio.wait_for(pending, 30)))


def access_token_of(config_dir: Path, backend: BackendProcess) -> str:
    return stored_entry(config_dir, backend.url)["access_token"]


def backend_call(backend: BackendProcess, method: str, token: str | None = None,
                 **body: Any) -> dict[str, Any]:
    headers = {"X-Access-Token": token} if token else {}
    response = httpx.post(f"{backend.url}api/method/{API}.{method}", json=body,
                          headers=headers, timeout=30)
    answer: dict[str, Any] = response.json()
    answer["http_status"] = response.status_code
    return answer


@contextlib.asynccontextmanager
async def helix_session(config_dir: Path, settings: dict[str, Any],
                        args: tuple[str, ...] = ()) -> AsyncIterator[LanguageClient]:
    """Helix 25.01's recorded capabilities: work-done progress, but no showDocument, and
    -32601 for showMessageRequest."""
    async with lsp_session("helix", config_dir, settings, args=args) as client:
        yield client


# -- signing in ---------------------------------------------------------------------------------


async def test_browser_sign_in_with_show_document(preset: str, config_dir: Path,
                                                  published: BackendProcess) -> None:
    email, password, _ = published.add_user()
    async with lsp_session(preset, config_dir, {"serverUrl": published.url},
                           args=log_args(config_dir)) as client:
        if not client_capabilities(preset).window.show_document:  # type: ignore[union-attr]
            pytest.skip(f"{preset} declares no window.showDocument: "
                        "test_browser_sign_in_from_a_helix_like_client covers it")
        before = await request(client, "oropendola/status")
        assert before["signedIn"] is False
        assert before["backend"]["profileSetting"] == "auto"

        pending = await start_sign_in(client)
        await wait_until(lambda: bool(client.shown_documents))
        shown = client.shown_documents[0]
        assert shown.external is True
        url = shown.uri
        assert url.startswith(f"{published.url}vscode-login?auth_request=")
        # The URL is also in a message and a progress report, for people whose editor
        # does not open it.
        await wait_until(lambda: sign_in_url(client) == url)
        assert any(url in text for text in progress_texts(client))
        assert any(url in m.message for m in client.messages)

        page = await asyncio.to_thread(complete_sign_in, url, email, password)
        assert page.status_code == 200 and "/vscode-auth-success" in str(page.url)
        result = to_json(await asyncio.wait_for(pending, 30))
        assert result == {"user": email, "fullName": "Test User"}

        status = await request(client, "oropendola/status")
        assert status["signedIn"] is True and status["session"] == "verified"
        assert status["user"] == email and status["fullName"] == "Test User"
        assert status["backend"]["profile"] == "oropendola_ai"
        assert status["backend"]["profileDetected"] is True
        assert status["subscription"]["plan"] == "Local"
        assert status["subscription"]["status"] == "Active"
        assert status["profile"] == {"email": email, "fullName": "Test User"}

        # The token works where the published app takes it: X-Access-Token and agent api_key.
        info = await request(client, "oropendola/userInfo")
        assert info["profile"]["email"] == email
        sub = await request(client, "oropendola/subscription")
        assert sub["subscription"]["status"] == "Active"
        answer = await request(client, "oropendola/chat", {"message": "Say hello"})
        assert answer["content"]

        entry = stored_entry(config_dir, published.url)
        assert stat.S_IMODE((config_dir / "session.json").stat().st_mode) == 0o600
        assert TOKEN.match(entry["access_token"]) and TOKEN.match(entry["refresh_token"])
        assert entry["user"] == email and "sid" not in entry
        tokens = (entry["access_token"], entry["refresh_token"])
        shown_to_client = " ".join([m.message for m in client.messages]
                                   + [m.message for m in client.log_messages]
                                   + progress_texts(client))
        assert not any(t in shown_to_client for t in tokens)

        # Signing out revokes the token at the backend and forgets it here.
        await request(client, "oropendola/signOut")
        assert published.url not in stored_entries(config_dir)
        assert backend_call(published, "vscode_auth.get_my_profile", tokens[0])[
            "http_status"] == 401
    log = server_log(config_dir)
    assert "Backend profile: oropendola_ai" in log and "browser" in log
    assert not any(t in log for t in tokens)


def stored_entries(config_dir: Path) -> dict[str, Any]:
    sessions: dict[str, Any] = json.loads((config_dir / "session.json").read_text())["sessions"]
    return sessions


async def test_browser_sign_in_from_a_helix_like_client(config_dir: Path,
                                                        published: BackendProcess) -> None:
    """No showDocument, no custom requests: the command, and the URL from the messages."""
    email, password, _ = published.add_user()
    async with helix_session(config_dir, {"serverUrl": published.url},
                             args=log_args(config_dir)) as client:
        commands = client.init_result.capabilities.execute_command_provider.commands  # type: ignore[attr-defined]
        assert "oropendola.signIn" in commands
        pending = asyncio.ensure_future(client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="oropendola.signIn")))
        await wait_until(lambda: sign_in_url(client) is not None)
        url = sign_in_url(client)
        assert url is not None
        await wait_until(lambda: any(url in text for text in progress_texts(client))
                         and any(url in m.message for m in client.messages))  # both ways
        assert client.shown_documents == []
        page = await asyncio.to_thread(complete_sign_in, url, email, password)
        assert page.status_code == 200
        result = to_json(await asyncio.wait_for(pending, 30))
        assert result == {"user": email, "fullName": "Test User"}
        await wait_until(lambda: any(f"Signed in to Oropendola as {email}" in m.message
                                     for m in client.messages))
        ended = [r for reports in client.progress_reports.values() for r in reports
                 if isinstance(r, types.WorkDoneProgressEnd)]
        assert any(e.message == f"Signed in as {email}" for e in ended)
        assert (await request(client, "oropendola/status"))["signedIn"] is True
        tokens = tuple(stored_entry(config_dir, published.url)[k]
                       for k in ("access_token", "refresh_token"))
    # The stored sign-in is used at the next start.
    async with helix_session(config_dir, {"serverUrl": published.url},
                             args=log_args(config_dir)) as client:
        for _ in range(200):
            status = await request(client, "oropendola/status")
            if status["session"] == "verified":
                break
            await asyncio.sleep(0.05)
        assert status["session"] == "verified" and status["user"] == email
        assert status["backend"]["profile"] == "oropendola_ai"
        assert (await request(client, "oropendola/chat", {"message": "hi"}))["content"]
    assert not any(t in server_log(config_dir) for t in tokens)


async def test_expired_sign_in_request(config_dir: Path, start_backend: Any) -> None:
    backend = start_backend(0, "--profile", "oropendola_ai", "--auth-poll-interval", POLL,
                            "--auth-request-lifetime", "1")
    backend.add_user()
    async with lsp_session("visual-studio-code", config_dir,
                           {"serverUrl": backend.url}) as client:
        pending = await start_sign_in(client)
        with pytest.raises(JsonRpcException) as failed:
            await asyncio.wait_for(pending, 30)
        assert failed.value.code == REQUEST_FAILED
        assert failed.value.data == {"kind": "sign_in_expired"}  # type: ignore[attr-defined]
        assert "expired" in failed.value.message and "sign in again" in failed.value.message
        assert (await request(client, "oropendola/status"))["signedIn"] is False
        ended = [r for reports in client.progress_reports.values() for r in reports
                 if isinstance(r, types.WorkDoneProgressEnd)]
        assert ended and ended[-1].message is not None and "expired" in ended[-1].message
    assert not (config_dir / "session.json").exists()


async def test_cancelled_sign_in_stops_polling(config_dir: Path,
                                               published: BackendProcess) -> None:
    email, password, _ = published.add_user()
    async with lsp_session("neovim", config_dir, {"serverUrl": published.url}) as client:
        # The request: $/cancelRequest.
        pending = await start_sign_in(client, "sign-in-1")
        await wait_until(lambda: sign_in_url(client) is not None)
        first_url = sign_in_url(client)
        assert first_url is not None
        client.cancel_request(types.CancelParams(id="sign-in-1"))
        with pytest.raises(JsonRpcRequestCancelled):
            await asyncio.wait_for(pending, 10)

        # The command: $/cancelRequest on workspace/executeCommand.
        command = asyncio.ensure_future(client.protocol.send_request_async(
            types.WORKSPACE_EXECUTE_COMMAND,
            types.ExecuteCommandParams(command="oropendola.signIn"), msg_id="sign-in-2"))
        await wait_until(lambda: sign_in_url(client, frozenset({first_url})) is not None)
        second_url = sign_in_url(client, frozenset({first_url}))
        assert second_url is not None
        client.cancel_request(types.CancelParams(id="sign-in-2"))
        with pytest.raises(JsonRpcRequestCancelled):
            await asyncio.wait_for(command, 10)

        # Completing either page now signs nobody in: nothing polls for them any more.
        for url in (first_url, second_url):
            page = await asyncio.to_thread(complete_sign_in, url, email, password)
            assert page.status_code == 200
        await asyncio.sleep(10 * float(POLL))
        status = await request(client, "oropendola/status")
        assert status["signedIn"] is False and status["session"] == "signed_out"
    assert not (config_dir / "session.json").exists()


# -- what the token is used for, and when it stops working ------------------------------------


async def test_refresh_then_revoked_token(config_dir: Path, published: BackendProcess) -> None:
    email, password, _ = published.add_user()
    async with lsp_session("visual-studio-code", config_dir,
                           {"serverUrl": published.url}) as client:
        await browser_sign_in(client, published, email, password)
        first = stored_entry(config_dir, published.url)

        # Someone refreshes the token elsewhere: the server's one stops working, the backend
        # refuses it, and the server refreshes it itself, once, without bothering the user.
        refreshed = backend_call(published, "vscode_auth.refresh_token",
                                 refresh_token=first["refresh_token"])
        assert refreshed["message"]["success"] is True
        info = await request(client, "oropendola/userInfo")
        assert info["profile"]["email"] == email
        second = stored_entry(config_dir, published.url)
        assert second["access_token"] not in (first["access_token"],
                                              refreshed["message"]["access_token"])
        assert second["refresh_token"] == first["refresh_token"]
        assert (await request(client, "oropendola/chat", {"message": "still there?"}))["content"]

        # Logged out by another client: both tokens die, and the server says to sign in again.
        revoked = backend_call(published, "vscode_auth.logout", second["access_token"])
        assert revoked["message"]["success"] is True
        with pytest.raises(JsonRpcException) as failed:
            await request(client, "oropendola/chat", {"message": "and now?"})
        assert failed.value.code == REQUEST_FAILED
        assert failed.value.data["kind"] == "session_expired"  # type: ignore[attr-defined]
        assert "sign in again" in failed.value.message
        assert second["access_token"] not in failed.value.message
        with pytest.raises(JsonRpcException) as again:
            await request(client, "oropendola/userInfo")
        assert "sign in again" in again.value.message
        status = await request(client, "oropendola/status")
        assert status["signedIn"] is False and status["session"] == "expired"

        # Signing in again recovers.
        await browser_sign_in(client, published, email, password)
        assert (await request(client, "oropendola/userInfo"))["profile"]["email"] == email


async def test_agent_in_band_errors(config_dir: Path, published: BackendProcess) -> None:
    email, password, _ = published.add_user()
    async with lsp_session("visual-studio-code", config_dir, {"serverUrl": published.url},
                           args=log_args(config_dir)) as client:
        await browser_sign_in(client, published, email, password)
        try:
            published.control("agent/fail", status=429)
            with pytest.raises(JsonRpcException) as quota:
                await request(client, "oropendola/chat", {"message": "hello"})
            assert quota.value.code == REQUEST_FAILED
            assert quota.value.data["kind"] == "rate_limited"  # type: ignore[attr-defined]
            assert "Quota exceeded" in quota.value.message
            assert "Daily quota exhausted" in quota.value.message

            published.control("agent/fail", status=503)
            with pytest.raises(JsonRpcException) as no_models:
                await request(client, "oropendola/chat", {"message": "hello"})
            assert no_models.value.data["kind"] == "backend_unavailable"  # type: ignore[attr-defined]
            assert "No models are available right now" in no_models.value.message

            published.control("agent/fail", status=500)
            with pytest.raises(JsonRpcException) as broken:
                await request(client, "oropendola/chat", {"message": "hello"})
            assert broken.value.data["kind"] == "request_failed"  # type: ignore[attr-defined]
            assert "Agent mode error" in broken.value.message
        finally:
            published.control("agent/fail", status=None)
        answer = await request(client, "oropendola/chat", {"message": "hello again"})
        assert answer["content"]
        # Still signed in: an in-band 429/503 is not a sign-in problem.
        assert (await request(client, "oropendola/status"))["signedIn"] is True
    log = server_log(config_dir)
    assert re.search(r"chat answered by model \S+ \(Optimized for \w+ tasks in auto mode\)", log)


# -- finding out the backend's names --------------------------------------------------------------


async def test_profile_detected_after_password_sign_in(config_dir: Path, published: BackendProcess,
                                                       backend: BackendProcess) -> None:
    for target, expected in ((published, "oropendola_ai"), (backend, "oropendola")):
        email, password, _ = target.add_user()
        directory = config_dir / expected
        directory.mkdir()
        async with lsp_session("visual-studio-code", directory, {"serverUrl": target.url},
                               args=log_args(directory)) as client:
            status = await request(client, "oropendola/status")
            assert status["backend"]["profileDetected"] is False
            await request(client, "oropendola/signIn", {"username": email, "password": password})
            status = await request(client, "oropendola/status")
            assert status["backend"]["profile"] == expected
            assert status["backend"]["profileDetected"] is True
            assert status["subscription"]["status"] == "Active"
            assert (await request(client, "oropendola/chat", {"message": "hi"}))["content"]
        log = server_log(directory)
        assert f"Backend profile: {expected}" in log
        said_417 = 'answered HTTP 417 "Failed to get method"' in log
        assert said_417 == (expected == "oropendola_ai")

        # At the next start the stored session is probed again.
        async with lsp_session("visual-studio-code", directory,
                               {"serverUrl": target.url}) as client:
            for _ in range(200):
                status = await request(client, "oropendola/status")
                if status["backend"]["profileDetected"]:
                    break
                await asyncio.sleep(0.05)
            assert status["backend"]["profile"] == expected
            assert status["backend"]["profileDetected"] is True


async def test_explicit_seed_profile_has_no_browser_sign_in(config_dir: Path,
                                                            published: BackendProcess) -> None:
    async with lsp_session("visual-studio-code", config_dir,
                           {"serverUrl": published.url, "profile": "oropendola"}) as client:
        with pytest.raises(JsonRpcException) as refused:
            await request(client, "oropendola/signIn", {"method": "browser"})
        assert refused.value.data["kind"] == "endpoint_unsupported"  # type: ignore[attr-defined]
        assert "oropendola_ai" in refused.value.message
        with pytest.raises(JsonRpcException) as bad:
            await request(client, "oropendola/signIn", {"method": "carrier pigeon"})
        assert bad.value.code == types.ErrorCodes.InvalidParams

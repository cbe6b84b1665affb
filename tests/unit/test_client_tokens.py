"""BackendClient with the browser sign-in's tokens, over real loopback HTTP against FakeFrappe:
where the access token goes, when it is refreshed, the agent's in-band errors, the sign-in's
own calls, and the profile probe."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from aiohttp import web

from oropendola_ls.backend.endpoints import BackendConfig
from oropendola_ls.backend.errors import (
    BackendUnavailableError,
    BadResponseError,
    NotSignedInError,
    RateLimitedError,
    SignInAgainError,
)
from oropendola_ls.backend.session import Credentials

if TYPE_CHECKING:
    from conftest import FakeFrappe, MakeClient, StartBackend

API = "oropendola_ai.oropendola_ai.api"
PROFILE = f"{API}.vscode_auth.get_my_profile"
AGENT = f"{API}.vscode_extension.agent"
REFRESH = f"{API}.vscode_auth.refresh_token"
INITIATE = f"{API}.vscode_auth.initiate_auth"
CHECK = f"{API}.vscode_auth.check_auth_status"
ACCESS = "a" * 64
NEW_ACCESS = "b" * 64
REFRESH_TOKEN = "c" * 64


@pytest.fixture
async def backend(start_backend: StartBackend) -> FakeFrappe:
    return await start_backend()


def published(backend: FakeFrappe) -> BackendConfig:
    return BackendConfig.create(backend.url, profile="oropendola_ai")


def tokens() -> Credentials:
    return Credentials(user="jane@example.com", access_token=ACCESS, refresh_token=REFRESH_TOKEN)


def unauthorized() -> web.Response:
    return web.json_response({"message": {"success": False, "error": "Unauthorized"}},
                             status=401)


async def test_access_token_goes_in_the_header_or_the_agent_body(
    backend: FakeFrappe, make_client: MakeClient
) -> None:
    backend.on(PROFILE, lambda: backend.ok({"success": True, "profile": {"email": "j@x"}}))
    backend.on(AGENT, lambda: backend.ok({"status": 200, "content": "hi", "model": "m"}))
    client = make_client(published(backend), credentials=tokens())
    await client.call("user.get_info")
    await client.call("chat.send_message", {"prompt": "hello"})
    assert backend.last(PROFILE).headers["X-Access-Token"] == ACCESS
    agent = backend.last(AGENT)
    assert agent.json() == {"prompt": "hello", "api_key": ACCESS}
    assert "X-Access-Token" not in agent.headers and "Cookie" not in agent.headers


async def test_a_session_user_sends_no_api_key(backend: FakeFrappe, make_client: MakeClient
                                               ) -> None:
    backend.on(AGENT, lambda: backend.ok({"status": 200, "content": "hi"}))
    client = make_client(published(backend), credentials=Credentials(sid="s" * 40))
    await client.call("chat.send_message", {"prompt": "hello"})
    assert backend.last(AGENT).json() == {"prompt": "hello"}
    assert backend.last(AGENT).headers["Cookie"] == "sid=" + "s" * 40


async def test_a_refused_token_is_refreshed_once_and_the_call_retried(
    backend: FakeFrappe, make_client: MakeClient
) -> None:
    async def profile(request: web.Request) -> web.Response:
        if request.headers.get("X-Access-Token") == NEW_ACCESS:
            return backend.ok({"success": True, "profile": {"email": "j@x"}})
        return unauthorized()

    backend.routes[PROFILE] = profile
    backend.on(REFRESH, lambda: backend.ok({"success": True, "access_token": NEW_ACCESS}))
    changed: list[Credentials] = []
    client = make_client(published(backend), credentials=tokens())
    client.on_credentials_changed = changed.append
    # Two calls refused at once: one refresh serves both.
    results = await asyncio.gather(client.call("user.get_info"), client.call("user.get_info"))
    assert all(r["profile"]["email"] == "j@x" for r in results)
    assert backend.count(REFRESH) == 1
    assert backend.last(REFRESH).json() == {"refresh_token": REFRESH_TOKEN}
    assert client.credentials is not None and client.credentials.access_token == NEW_ACCESS
    assert changed and changed[0].access_token == NEW_ACCESS


async def test_a_refused_refresh_means_sign_in_again(backend: FakeFrappe,
                                                     make_client: MakeClient) -> None:
    backend.on(AGENT, lambda: backend.ok({"status": 401, "error": "Invalid API key"}))
    backend.on(REFRESH, lambda: backend.ok({"success": False, "error": "Invalid refresh token"}))
    client = make_client(published(backend), credentials=tokens())
    with pytest.raises(SignInAgainError) as refused:
        await client.call("chat.send_message", {"prompt": "hello"})
    assert refused.value.kind == "session_expired"
    assert "sign in again" in refused.value.message and "Invalid API key" in refused.value.message
    assert ACCESS not in refused.value.message and REFRESH_TOKEN not in refused.value.message
    assert backend.count(AGENT) == 1 and backend.count(REFRESH) == 1


async def test_no_refresh_token_means_sign_in_again_at_once(
    backend: FakeFrappe, make_client: MakeClient
) -> None:
    backend.routes[PROFILE] = lambda _request: asyncio.sleep(0, unauthorized())
    client = make_client(published(backend), credentials=Credentials(access_token=ACCESS))
    with pytest.raises(SignInAgainError):
        await client.call("user.get_info")
    assert backend.count(REFRESH) == 0


@pytest.mark.parametrize(
    ("answer", "error", "words"),
    [
        ({"status": 429, "error": "Monthly budget exceeded", "message": "Upgrade your plan",
          "budget_remaining": 0}, RateLimitedError,
         ("Monthly budget exceeded", "Upgrade your plan", "budget remaining: 0")),
        ({"status": 503, "error": "All models failed", "message": "try later"},
         BackendUnavailableError, ("No models are available right now", "All models failed")),
        ({"status": 401, "error": "Invalid or expired API key"}, NotSignedInError,
         ("Invalid or expired API key",)),
    ],
)
async def test_agent_in_band_errors(
    backend: FakeFrappe, make_client: MakeClient, answer: dict[str, object],
    error: type[Exception], words: tuple[str, ...],
) -> None:
    backend.on(AGENT, lambda: backend.ok(answer))
    client = make_client(published(backend), credentials=Credentials(sid="s" * 40))
    with pytest.raises(error) as failed:
        await client.call("chat.send_message", {"prompt": "hello"})
    assert all(w in str(failed.value) for w in words), str(failed.value)
    assert backend.count(AGENT) == 1


async def test_browser_sign_in_calls(backend: FakeFrappe, make_client: MakeClient) -> None:
    backend.on(INITIATE, lambda: backend.ok({
        "success": True, "auth_request_id": "r1", "login_url": "/vscode-login?auth_request=r1",
        "expires_in": 300, "poll_interval": 2}))
    backend.on(CHECK,
               lambda: backend.ok({"success": True, "status": "pending", "message": "Waiting"}),
               lambda: backend.ok({"success": True, "status": "completed",
                                   "access_token": ACCESS, "refresh_token": REFRESH_TOKEN,
                                   "user": {"email": "j@x", "full_name": "J X"}}),
               lambda: backend.ok({"success": False, "status": "expired",
                                   "error": "Authentication request expired"}))
    client = make_client(published(backend))
    started = await client.start_browser_sign_in()
    assert started.login_url == f"{backend.url}vscode-login?auth_request=r1"  # made absolute
    assert (started.expires_in, started.poll_interval) == (300, 2)
    assert (await client.check_browser_sign_in("r1")).state == "pending"
    done = await client.check_browser_sign_in("r1")
    assert done.state == "completed" and done.credentials == Credentials(
        user="j@x", full_name="J X", access_token=ACCESS, refresh_token=REFRESH_TOKEN)
    assert ACCESS not in repr(done.credentials)
    assert backend.last(CHECK).query == {"auth_request_id": "r1"}
    expired = await client.check_browser_sign_in("r1")
    assert expired.state == "expired" and "expired" in expired.message


async def test_a_remote_plain_http_sign_in_page_is_refused(backend: FakeFrappe,
                                                           make_client: MakeClient) -> None:
    backend.on(INITIATE, lambda: backend.ok({
        "success": True, "auth_request_id": "r1",
        "login_url": "http://evil.example/vscode-login?auth_request=r1"}))
    client = make_client(published(backend))
    with pytest.raises(BadResponseError, match="https"):
        await client.start_browser_sign_in()


async def test_seed_profile_resolves_browser_names_only_with_the_fallback(
    backend: FakeFrappe, make_client: MakeClient
) -> None:
    client = make_client(BackendConfig.create(backend.url))
    assert client.resolve("auth.initiate_browser") is None
    client.published_fallback = True
    endpoint = client.resolve("auth.initiate_browser")
    assert endpoint is not None and endpoint.method == INITIATE


async def test_profile_probe(backend: FakeFrappe, make_client: MakeClient) -> None:
    client = make_client(BackendConfig.create(backend.url))
    profile, reason = await client.probe_seed_names()  # FakeFrappe answers 417 for it
    assert profile == "oropendola_ai" and "417" in reason
    backend.on("oropendola.auth.verify_session",
               lambda: backend.error(403, "PermissionError", "Not permitted"))
    profile, reason = await client.probe_seed_names()
    assert profile == "oropendola" and "403" in reason
    backend.on("ping", lambda: backend.text("<html>maintenance</html>", status=503))
    profile, _ = await client.probe_seed_names()
    assert profile is None

"""The published app's browser sign-in (``vscode_auth``) and what its tokens open, over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from oropendola_ls.backend.endpoints import PROFILES
from oropendola_ls.cli import build_parser
from oropendola_ls.reference_backend import RunningBackend, start_backend
from oropendola_ls.reference_backend.vscode_auth import COMPLETE_AUTH, VSCODE_AUTH

from .conftest import EMAIL, FULL_NAME, PASSWORD, call, login, make_client

AI = PROFILES["oropendola_ai"]
INITIATE = AI["auth.initiate_browser"].method
CHECK = AI["auth.check_browser"].method
REFRESH = AI["auth.refresh_token"].method
USAGE = AI["usage.get_stats"].method
PROFILE = AI["user.get_info"].method
SUBSCRIPTION = AI["subscription.check"].method
MY_SUBSCRIPTION = AI["subscription.get_info"].method
AGENT = AI["chat.send_message"].method
SEED_SEND = PROFILES["oropendola"]["chat.send_message"].method
LOGOUT = f"{VSCODE_AUTH}.logout"
HEX64 = re.compile(r"[0-9a-f]{64}")
POLL = 0.1


@pytest.fixture(params=[("oropendola", "oropendola_ai"), ("oropendola_ai",)],
                ids=["both-profiles", "published-only"])
async def backend(request: pytest.FixtureRequest, data_dir: Path) -> AsyncIterator[RunningBackend]:
    """A backend with the control endpoint and a fast sign-in poll, under both profile sets."""
    running = await start_backend(data_dir=data_dir, profiles=request.param, control=True,
                                  auth_poll_interval=POLL)
    running.store.add_user(EMAIL, PASSWORD, FULL_NAME)
    try:
        yield running
    finally:
        await running.close()


def message(response: httpx.Response) -> Any:
    assert response.headers["content-type"].startswith("application/json"), response.text
    return response.json()["message"]


async def initiate(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await call(client, INITIATE, verb="GET")
    assert response.status_code == 200
    answer: dict[str, Any] = message(response)
    return answer


async def check(client: httpx.AsyncClient, request_id: str | None) -> Any:
    params = {} if request_id is None else {"auth_request_id": request_id}
    response = await call(client, CHECK, verb="GET", params=params)
    assert response.status_code == 200
    return message(response)


async def submit(client: httpx.AsyncClient, request_id: str, usr: str | None = EMAIL,
                 pwd: str | None = PASSWORD, **kwargs: Any) -> httpx.Response:
    """Post the sign-in form as a browser would (application/x-www-form-urlencoded)."""
    form = {"auth_request_id": request_id}
    if usr is not None:
        form["usr"] = usr
    if pwd is not None:
        form["pwd"] = pwd
    return await call(client, COMPLETE_AUTH, data=form, **kwargs)


async def sign_in(client: httpx.AsyncClient) -> dict[str, Any]:
    """The whole browser flow; the completed ``check_auth_status`` answer."""
    started = await initiate(client)
    completed = await submit(client, started["auth_request_id"])
    assert completed.status_code == 303, completed.text
    answer: dict[str, Any] = await check(client, started["auth_request_id"])
    assert answer["status"] == "completed", answer
    return answer


def with_token(token: str) -> dict[str, Any]:
    return {"headers": {"X-Access-Token": token}}


async def agent(client: httpx.AsyncClient, api_key: str | None, prompt: str = "hello") -> Any:
    body = {"prompt": prompt, **({} if api_key is None else {"api_key": api_key})}
    response = await call(client, AGENT, json=body)
    assert response.status_code == 200
    return message(response)


async def test_the_whole_flow_from_sign_in_to_sign_out(
    backend: RunningBackend, client: httpx.AsyncClient
) -> None:
    started = await initiate(client)
    request_id = started["auth_request_id"]
    assert re.fullmatch(r"[0-9a-f]{20}", request_id)
    assert started == {
        "success": True, "auth_request_id": request_id,
        "login_url": f"{backend.url}vscode-login?auth_request={request_id}",
        "expires_in": 300, "poll_interval": POLL,
    }
    assert await check(client, request_id) == {
        "success": True, "status": "pending", "message": "Waiting for user to complete login"}

    page = await client.get(started["login_url"])
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    assert f'action="/api/method/{COMPLETE_AUTH}"' in page.text
    assert f'<input type="hidden" name="auth_request_id" value="{request_id}">' in page.text
    assert 'name="usr"' in page.text and 'name="pwd" type="password"' in page.text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text)  # self-contained

    completed = await submit(client, request_id)
    assert completed.status_code == 303
    location = completed.headers["location"]
    assert urlsplit(location).path == "/vscode-auth-success"
    assert parse_qs(urlsplit(location).query) == {"name": [FULL_NAME], "email": [EMAIL]}
    success = await client.get(location)
    assert success.status_code == 200 and f"Signed in as {FULL_NAME} ({EMAIL})" in success.text

    tokens = await check(client, request_id)
    access, refresh = tokens["access_token"], tokens["refresh_token"]
    assert HEX64.fullmatch(access) and HEX64.fullmatch(refresh) and access != refresh
    assert tokens == {
        "success": True, "status": "completed", "access_token": access,
        "refresh_token": refresh, "token_type": "Bearer", "expires_in": 2592000,
        "user": {"email": EMAIL, "full_name": FULL_NAME, "user_image": ""},
    }
    again = await check(client, request_id)  # the raw tokens exist in one answer only
    assert again["success"] is False and again["status"] == "used"
    assert "access_token" not in again
    assert (await client.get(started["login_url"])).status_code == 409

    # what the access token opens
    profile = await call(client, PROFILE, verb="GET", **with_token(access))
    assert profile.status_code == 200
    assert (message(profile))["profile"]["email"] == EMAIL
    subscription = message(await call(client, SUBSCRIPTION, verb="GET",
                                            **with_token(access)))
    assert subscription["success"] is True and subscription["subscription"]["is_active"] is True
    cookie_only = await call(client, MY_SUBSCRIPTION, **with_token(access))
    assert cookie_only.status_code == 403  # user_api takes a session, as in the app (§5.2)
    assert message(await call(client, USAGE, verb="GET", params={"api_key": access})) \
        == {"daily_quota_limit": -1, "daily_quota_remaining": -1, "daily_quota_used": 0,
            "status": "Active", "plan": "local"}

    answer = await agent(client, access, "Explain closures in one line")
    assert answer["status"] == 200 and "Explain closures" in answer["content"]
    assert answer["model"] == "reference-echo" and answer["agent_mode"] is True
    assert answer["selection_reason"] == "Optimized for simple tasks in auto mode"
    assert answer["full_response"]["choices"][0]["message"]["content"] == answer["content"]
    assert {"auto_selected", "task_complexity", "latency_ms", "cost",
            "budget_remaining"} <= answer.keys()
    usage = message(await call(client, USAGE, json={"api_key": access}))
    assert usage["daily_quota_used"] == 1

    # refresh: a new access token in place of the old one
    refreshed = message(await call(client, REFRESH, json={"refresh_token": refresh}))
    new_access = refreshed["access_token"]
    assert refreshed == {"success": True, "access_token": new_access, "token_type": "Bearer",
                         "expires_in": 2592000}
    assert HEX64.fullmatch(new_access) and new_access != access
    old = await call(client, PROFILE, verb="GET", **with_token(access))
    assert old.status_code == 401
    assert old.json() == {"message": {"success": False, "error": "Unauthorized"}}
    assert await agent(client, access) == {"status": 401, "error": "Invalid API key"}
    assert (await call(client, PROFILE, verb="GET", **with_token(new_access))).status_code == 200
    assert (await agent(client, new_access))["status"] == 200

    # logout revokes the access and the refresh token
    out = await call(client, LOGOUT, json={}, **with_token(new_access))
    assert (out.status_code, message(out)) == (
        200, {"success": True, "message": "Successfully logged out"})
    for method in (PROFILE, SUBSCRIPTION):
        refused = await call(client, method, verb="GET", **with_token(new_access))
        assert refused.status_code == 401, method
        assert refused.json() == {"message": {"success": False, "error": "Unauthorized"}}
    assert await agent(client, new_access) == {"status": 401, "error": "Invalid API key"}
    assert message(await call(client, USAGE, params={"api_key": new_access})) == {
        "error": "Invalid API key"}
    assert message(await call(client, REFRESH, json={"refresh_token": refresh})) == {
        "success": False, "error": "Invalid refresh token"}
    assert await check(client, request_id) == {
        "success": False, "status": "revoked", "error": "Authentication revoked"}
    repeat = await call(client, LOGOUT, json={}, **with_token(new_access))
    assert (message(repeat))["success"] is True


async def test_a_request_expires_after_its_lifetime(data_dir: Path) -> None:
    async with await start_backend(data_dir=data_dir, profiles=("oropendola_ai",),
                                   auth_request_lifetime=0.4, auth_poll_interval=0.05) as backend:
        backend.store.add_user(EMAIL, PASSWORD, FULL_NAME)
        async with make_client(backend) as client:
            started = await initiate(client)
            assert (started["expires_in"], started["poll_interval"]) == (0.4, 0.05)
            unpolled = await initiate(client)  # completed in time, but never picked up
            assert (await submit(client, unpolled["auth_request_id"])).status_code == 303
            await asyncio.sleep(0.5)
            expired = {"success": False, "status": "expired",
                       "error": "Authentication request expired. Please try again."}
            assert await check(client, started["auth_request_id"]) == expired
            assert await check(client, started["auth_request_id"]) == expired
            assert await check(client, unpolled["auth_request_id"]) == expired
            page = await client.get(started["login_url"])
            assert page.status_code == 410 and "expired" in page.text
            late = await submit(client, started["auth_request_id"])
            assert late.status_code == 303
            assert late.headers["location"] == "/vscode-auth-error?type=expired"
            shown = await client.get(late.headers["location"])
            assert shown.status_code == 410 and "has expired" in shown.text


@pytest.mark.parametrize(
    ("usr", "pwd", "error"),
    [(EMAIL, "wrong password", "Invalid login credentials"),
     ("nobody@example.com", PASSWORD, "Invalid login credentials"),
     (EMAIL, None, "Incomplete login details"),
     ('"<b>"@example.com', "x", "Invalid login credentials")],
    ids=["wrong-password", "unknown-user", "no-password", "markup-in-email"],
)
async def test_bad_credentials_show_the_form_again(
    client: httpx.AsyncClient, usr: str, pwd: str | None, error: str
) -> None:
    started = await initiate(client)
    request_id = started["auth_request_id"]
    refused = await submit(client, request_id, usr, pwd)
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("text/html")
    assert f'role="alert">{error}</p>' in refused.text
    assert f'value="{request_id}"' in refused.text and 'name="pwd"' in refused.text
    assert "<b>" not in refused.text  # what the user typed comes back escaped
    assert (await check(client, request_id))["status"] == "pending"
    assert (await submit(client, request_id)).status_code == 303  # and may try again
    assert (await check(client, request_id))["status"] == "completed"


async def test_unknown_request_ids(client: httpx.AsyncClient) -> None:
    invalid = {"success": False, "error": "Invalid authentication request ID"}
    assert await check(client, "0" * 20) == invalid
    assert await check(client, None) == invalid
    assert await check(client, "x" * 5000) == invalid
    page = await client.get("vscode-login", params={"auth_request": "0" * 20})
    assert page.status_code == 404 and "not valid" in page.text
    assert (await client.get("vscode-login")).status_code == 404
    posted = await submit(client, "0" * 20)
    assert posted.status_code == 303
    assert posted.headers["location"] == "/vscode-auth-error?type=invalid"
    assert message(await call(client, REFRESH, json={"refresh_token": "f" * 64})) == {
        "success": False, "error": "Invalid refresh token"}
    assert message(await call(client, REFRESH, json={})) == {
        "success": False, "error": "Invalid refresh token"}


async def test_a_browser_with_a_session_continues_as_its_user(
    backend: RunningBackend, client: httpx.AsyncClient
) -> None:
    sid = await login(client)
    started = await initiate(client)
    request_id = started["auth_request_id"]
    page = await client.get(started["login_url"], headers={"Cookie": f"sid={sid}"})
    assert f"Continue as {EMAIL}" in page.text
    # a GET (a link another site could plant) never completes it, even with the cookie
    followed = await call(client, COMPLETE_AUTH, sid=sid, verb="GET",
                          params={"auth_request_id": request_id})
    assert followed.status_code == 303
    assert followed.headers["location"] == f"/vscode-login?auth_request={request_id}"
    foreign = await submit(client, request_id, None, None, sid=sid,
                           headers={"Origin": "https://evil.example"})
    assert foreign.headers["location"] == "/vscode-auth-error?type=origin"
    guest = await submit(client, request_id, None, None)
    assert guest.headers["location"] == f"/vscode-login?auth_request={request_id}"
    assert (await check(client, request_id))["status"] == "pending"

    origin = backend.url.rstrip("/")
    continued = await submit(client, request_id, None, None, sid=sid, headers={"Origin": origin})
    assert continued.status_code == 303
    assert continued.headers["location"].startswith("/vscode-auth-success?")
    tokens = await check(client, request_id)
    assert tokens["user"]["email"] == EMAIL


async def test_a_token_that_is_sent_must_be_live(client: httpx.AsyncClient) -> None:
    sid = await login(client)
    with_session = await call(client, PROFILE, sid=sid, verb="GET")
    assert with_session.status_code == 200  # no token: the session is enough
    bad = await call(client, PROFILE, sid=sid, verb="GET", **with_token("0" * 64))
    assert bad.status_code == 401  # a token that is sent is the credential asked for


async def test_agent_in_band_errors(client: httpx.AsyncClient) -> None:
    access = (await sign_in(client))["access_token"]
    assert await agent(client, None) == {"status": 400, "error": "API key is required"}
    assert await agent(client, access, "  ") == {"status": 400, "error": "Prompt is required"}
    assert await agent(client, "f" * 64) == {"status": 401, "error": "Invalid API key"}
    assert message(await call(client, USAGE, json={})) == {"error": "API key is required"}


async def test_control_makes_chat_fail_with_quota_or_no_models(
    backend: RunningBackend, client: httpx.AsyncClient
) -> None:
    access = (await sign_in(client))["access_token"]

    async def fail(body: object) -> httpx.Response:
        return await client.post("_reference/control/agent/fail", json=body)

    assert (await fail({"status": 429})).json() == {"status": 429}
    quota = {"status": 429, "error": "Quota exceeded",
             "message": "Daily quota exhausted. Quota will reset tomorrow.",
             "budget_remaining": 0}
    assert await agent(client, access) == quota
    assert await agent(client, access) == quota  # until cleared
    if "oropendola" in backend.profiles:  # the seed's send_message fails alike
        sid = await login(client)
        seed = await call(client, SEED_SEND, sid=sid, json={"message": "hi"})
        assert message(seed) == quota
    assert await agent(client, access, " ") == {"status": 400, "error": "Prompt is required"}

    assert (await fail({"status": 503})).json() == {"status": 503}
    assert await agent(client, access) == {
        "status": 503, "error": "No available models",
        "message": "No model is available for your plan right now. Try again later."}
    assert await backend.fail_agent(500) == {"status": 500}
    assert (await agent(client, access))["error"] == "Agent mode error"

    assert (await fail({"status": None})).json() == {"status": None}
    assert (await agent(client, access))["status"] == 200

    for body in ({"status": 404}, {"status": True}, {"status": "429"}, {}):
        refused = await fail(body)
        assert refused.status_code == 400, body
        assert "status" in refused.json()["error"]
    with pytest.raises(ValueError, match="429, 500, 503 or null"):
        await backend.fail_agent(418)


async def test_tokens_are_stored_hashed(
    backend: RunningBackend, client: httpx.AsyncClient
) -> None:
    tokens = await sign_in(client)
    refreshed = message(await call(client, REFRESH,
                                         json={"refresh_token": tokens["refresh_token"]}))
    raw = [tokens["access_token"], tokens["refresh_token"], refreshed["access_token"]]
    files = [path for path in backend.store.data_dir.rglob("*") if path.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        for token in raw:
            assert token.encode() not in data, path
            assert token.upper().encode() not in data, path
    with contextlib.closing(sqlite3.connect(backend.store.path)) as db:
        [(access_hash, refresh_hash)] = db.execute(
            "SELECT access_token_hash, refresh_token_hash FROM vscode_auth_requests"
            " WHERE status = 'Completed'").fetchall()
    assert access_hash == hashlib.sha256(raw[2].encode()).hexdigest()
    assert refresh_hash == hashlib.sha256(raw[1].encode()).hexdigest()


async def test_the_seed_profile_alone_has_no_browser_sign_in(data_dir: Path) -> None:
    backend = await start_backend(data_dir=data_dir, profiles=("oropendola",))
    async with backend, make_client(backend) as client:
        assert (await call(client, INITIATE, verb="GET")).status_code == 417
        assert (await call(client, COMPLETE_AUTH, data={})).status_code == 417
        assert (await client.get("vscode-login")).status_code == 404


def test_backend_command_line_options() -> None:
    args = build_parser().parse_args(
        ["backend", "--auth-poll-interval", "0.1", "--auth-request-lifetime", "5"])
    assert (args.auth_poll_interval, args.auth_request_lifetime) == (0.1, 5.0)
    defaults = build_parser().parse_args(["backend"])
    assert (defaults.auth_poll_interval, defaults.auth_request_lifetime) == (2.0, 300.0)
    for bad in (["--auth-poll-interval", "0"], ["--auth-request-lifetime", "nan"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["backend", *bad])


async def test_start_backend_refuses_bad_auth_timing(data_dir: Path) -> None:
    with pytest.raises(ValueError, match="auth poll interval"):
        await start_backend(data_dir=data_dir, auth_poll_interval=0)
    with pytest.raises(ValueError, match="auth request lifetime"):
        await start_backend(data_dir=data_dir, auth_request_lifetime=-1)

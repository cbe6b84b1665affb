"""Login, logout, sessions, cookies and API-key auth against a running reference backend."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import httpx
import pytest

from oropendola_ls.reference_backend import RunningBackend, Store, start_backend

from .conftest import (
    EMAIL,
    FULL_NAME,
    OTHER_EMAIL,
    OTHER_PASSWORD,
    PASSWORD,
    call,
    expired_cookie_names,
    login,
    make_client,
    server_messages,
    set_cookies,
)

LOGIN_COOKIES = {"sid", "system_user", "full_name", "user_id", "user_image"}


async def test_ping_answers_pong_as_json(client: httpx.AsyncClient) -> None:
    response = await call(client, "ping", verb="GET")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"message": "pong"}


async def test_login_with_json_sets_frappe_body_and_cookies(
    client: httpx.AsyncClient, backend: RunningBackend
) -> None:
    response = await call(client, "login", json={"usr": EMAIL, "pwd": PASSWORD})
    assert response.status_code == 200
    assert response.json() == {"message": "Logged In", "home_page": "/app", "full_name": FULL_NAME}
    cookies = set_cookies(response)
    assert set(cookies) == LOGIN_COOKIES
    sid = cookies["sid"]
    assert sid["httponly"] is True
    assert sid["path"] == "/"
    assert sid["samesite"] == "Lax"
    assert sid["max-age"] == str(240 * 3600)
    assert sid["expires"]
    assert not sid["secure"]  # plain http on loopback
    assert cookies["system_user"].value == "yes"
    assert cookies["full_name"].value == "Jane%20Doe"
    assert cookies["user_id"].value == "jane%40example.com"
    assert cookies["user_image"].value == ""
    for name in LOGIN_COOKIES - {"sid"}:
        assert not cookies[name]["httponly"], name
        assert cookies[name]["samesite"] == "Lax"
    session = backend.store.get_session(sid.value)
    assert session is not None and session.user == EMAIL


async def test_login_with_form_through_the_seed_name(client: httpx.AsyncClient) -> None:
    response = await call(
        client, "oropendola.auth.login", data={"usr": EMAIL.upper(), "pwd": PASSWORD}
    )
    assert response.status_code == 200
    assert response.json()["message"] == "Logged In"
    sid = set_cookies(response)["sid"].value
    assert (await call(client, "frappe.auth.get_logged_user", sid=sid)).json() == {
        "message": EMAIL
    }


@pytest.mark.parametrize(
    ("usr", "pwd"),
    [(EMAIL, "wrong password"), ("nobody@example.com", PASSWORD)],
    ids=["wrong-password", "unknown-user"],
)
async def test_bad_credentials_are_401(client: httpx.AsyncClient, usr: str, pwd: str) -> None:
    response = await call(client, "login", json={"usr": usr, "pwd": pwd})
    assert response.status_code == 401
    assert response.json() == {
        "message": "Invalid login credentials",
        "exc_type": "AuthenticationError",
    }
    assert "sid" in expired_cookie_names(response)


@pytest.mark.parametrize(
    "body",
    [{}, {"usr": EMAIL}, {"pwd": PASSWORD}, {"usr": "", "pwd": PASSWORD}],
    ids=["nothing", "no-pwd", "no-usr", "empty-usr"],
)
async def test_incomplete_login_is_401(client: httpx.AsyncClient, body: dict[str, str]) -> None:
    response = await call(client, "login", data=body)
    assert response.status_code == 401
    assert response.json() == {
        "message": "Incomplete login details",
        "exc_type": "AuthenticationError",
    }


async def test_disabled_user_cannot_log_in(
    client: httpx.AsyncClient, backend: RunningBackend
) -> None:
    backend.store.set_enabled(EMAIL, False)
    response = await call(client, "login", json={"usr": EMAIL, "pwd": PASSWORD})
    assert response.status_code == 401
    assert response.json()["message"] == "User disabled or missing"
    wrong = await call(client, "login", json={"usr": EMAIL, "pwd": "nope"})
    assert wrong.json()["message"] == "Invalid login credentials"


async def test_get_logged_user_with_and_without_session(client: httpx.AsyncClient) -> None:
    sid = await login(client)
    response = await call(client, "frappe.auth.get_logged_user", sid=sid, verb="GET")
    assert response.status_code == 200
    assert response.json() == {"message": EMAIL}
    assert "session_expired" not in response.json()

    guest = await call(client, "frappe.auth.get_logged_user", verb="GET")
    assert guest.status_code == 403
    body = guest.json()
    assert body["exc_type"] == "PermissionError"
    assert "session_expired" not in body
    [message] = server_messages(body)
    assert "not permitted" in message["message"]
    assert message["indicator"] == "red" and message["raise_exception"] == 1


async def test_unknown_sid_is_guest_with_session_expired(client: httpx.AsyncClient) -> None:
    response = await call(client, "oropendola.auth.verify_session", sid="f" * 56, verb="GET")
    assert response.status_code == 403
    assert response.json()["session_expired"] == 1
    assert response.json()["exc_type"] == "PermissionError"
    assert expired_cookie_names(response) >= LOGIN_COOKIES
    # A guest method still answers, flagged.
    ping = await call(client, "ping", sid="f" * 56)
    assert ping.status_code == 200
    assert ping.json() == {"message": "pong", "session_expired": 1}


async def test_expire_sessions_from_another_store_ends_the_session(
    client: httpx.AsyncClient, data_dir: Path
) -> None:
    sid = await login(client)
    other_process = Store(data_dir)  # another connection, as a CLI command would open
    try:
        assert other_process.expire_sessions(EMAIL) == 1
    finally:
        other_process.close()
    response = await call(client, "frappe.auth.get_logged_user", sid=sid)
    assert response.status_code == 403
    assert response.json()["session_expired"] == 1


async def test_short_session_expiry_expires_and_requests_slide_it(tmp_path: Path) -> None:
    backend = await start_backend(data_dir=tmp_path, session_expiry=0.4)
    try:
        backend.store.add_user(EMAIL, PASSWORD)
        async with make_client(backend) as client:
            sid = await login(client)
            first = backend.store.get_session(sid)
            assert first is not None
            await asyncio.sleep(0.05)
            ok = await call(client, "frappe.auth.get_logged_user", sid=sid)
            assert ok.json() == {"message": EMAIL}
            assert set_cookies(ok)["sid"]["max-age"] == "1"
            refreshed = backend.store.get_session(sid)
            assert refreshed is not None and refreshed.expires_at > first.expires_at
            await asyncio.sleep(0.5)
            expired = await call(client, "frappe.auth.get_logged_user", sid=sid)
            assert expired.status_code == 403
            assert expired.json()["session_expired"] == 1
            assert backend.store.get_session(sid) is None
    finally:
        await backend.close()


async def test_cookie_jar_client_stays_logged_in(backend: RunningBackend) -> None:
    async with make_client(backend) as client:
        await client.post("api/method/login", data={"usr": EMAIL, "pwd": PASSWORD})
        assert (await client.get("api/method/frappe.auth.get_logged_user")).json() == {
            "message": EMAIL
        }
        await client.post("api/method/logout")
        assert (await client.get("api/method/frappe.auth.get_logged_user")).status_code == 403


async def test_logout_deletes_session_and_expires_cookies(
    client: httpx.AsyncClient, backend: RunningBackend
) -> None:
    sid = await login(client)
    response = await call(client, "oropendola.auth.logout", sid=sid)
    assert response.status_code == 200
    assert response.json() == {}
    assert expired_cookie_names(response) >= LOGIN_COOKIES
    assert backend.store.get_session(sid) is None
    after = await call(client, "frappe.auth.get_logged_user", sid=sid)
    assert after.status_code == 403
    assert after.json()["session_expired"] == 1
    # Logging out as a Guest is allowed, as in Frappe.
    assert (await call(client, "logout")).status_code == 200


async def test_vscode_auth_logout_answers_even_a_guest(client: httpx.AsyncClient) -> None:
    response = await call(client, "oropendola_ai.oropendola_ai.api.vscode_auth.logout", json={})
    assert response.status_code == 200
    assert response.json() == {"message": {"success": True, "message": "Successfully logged out"}}


async def test_token_and_basic_auth(client: httpx.AsyncClient, backend: RunningBackend) -> None:
    key, secret = backend.store.generate_api_key(EMAIL)
    token = await call(
        client, "frappe.auth.get_logged_user", headers={"Authorization": f"token {key}:{secret}"}
    )
    assert token.status_code == 200
    assert token.json() == {"message": EMAIL}
    assert "sid" not in set_cookies(token)  # token auth starts no session
    basic = base64.b64encode(f"{key}:{secret}".encode()).decode()
    response = await call(
        client, "frappe.auth.get_logged_user", headers={"Authorization": f"Basic {basic}"}
    )
    assert response.json() == {"message": EMAIL}


@pytest.mark.parametrize(
    "header",
    ["token {key}:wrong-secret", "token unknownkey:{secret}", "Bearer abcdef", "token garbage"],
    ids=["wrong-secret", "unknown-key", "bearer", "malformed"],
)
async def test_bad_authorization_is_401(
    client: httpx.AsyncClient, backend: RunningBackend, header: str
) -> None:
    key, secret = backend.store.generate_api_key(EMAIL)
    for method in ("frappe.auth.get_logged_user", "ping"):
        response = await call(
            client, method, headers={"Authorization": header.format(key=key, secret=secret)}
        )
        assert response.status_code == 401, method
        assert response.json() == {"exc_type": "AuthenticationError"}
        assert "sid" in expired_cookie_names(response)


async def test_api_secret_and_password_are_not_stored_in_clear(
    client: httpx.AsyncClient, backend: RunningBackend
) -> None:
    key, secret = backend.store.generate_api_key(EMAIL)
    await login(client)
    raw = backend.store.path.read_bytes()
    assert EMAIL.encode() in raw  # the file really holds the user's row
    assert PASSWORD.encode() not in raw
    assert secret.encode() not in raw
    assert key.encode() in raw
    stored = backend.store.password_hash(EMAIL)
    assert stored is not None and stored.startswith("$scrypt$ln=")


async def test_each_user_gets_their_own_session(
    client: httpx.AsyncClient, backend: RunningBackend
) -> None:
    backend.store.add_user(OTHER_EMAIL, OTHER_PASSWORD)
    jane, omar = await login(client), await login(client, OTHER_EMAIL, OTHER_PASSWORD)
    assert jane != omar
    assert (await call(client, "frappe.auth.get_logged_user", sid=omar)).json() == {
        "message": OTHER_EMAIL
    }
    assert (await call(client, "frappe.auth.get_logged_user", sid=jane)).json() == {
        "message": EMAIL
    }

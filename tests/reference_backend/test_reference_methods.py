"""The method table: unknown methods, both profiles' names, guests, and each endpoint's shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from oropendola_ls.backend.endpoints import PROFILES
from oropendola_ls.reference_backend import RunningBackend, start_backend

from .conftest import (
    EMAIL,
    FULL_NAME,
    OTHER_EMAIL,
    OTHER_PASSWORD,
    PASSWORD,
    call,
    login,
    make_client,
    server_messages,
)

SEED = PROFILES["oropendola"]
AI = PROFILES["oropendola_ai"]
ALL_NAMES = sorted(
    {(profile, logical, ep.method) for profile, table in PROFILES.items()
     for logical, ep in table.items()}
)


def not_found_message(response: httpx.Response) -> str:
    assert response.status_code == 417, response.text
    body = response.json()
    assert body["exc_type"] == "ValidationError"
    [message] = server_messages(body)
    return str(message["message"])


def request_for(logical: str) -> dict[str, Any]:
    """Arguments that make each logical endpoint succeed."""
    arguments: dict[str, dict[str, Any]] = {
        "auth.login": {"json": {"usr": EMAIL, "pwd": PASSWORD}},
        "chat.send_message": {"json": {"prompt": "hello"}},
        "chat.stream": {"json": {"message": "hello"}},
        "workspace.index": {"json": {"files": [{"path": "a.py"}]}},
        "workspace.search": {"json": {"query": "x"}},
        "files.upload": {"files": {"file": ("notes.txt", b"hello\n", "text/plain")}},
        "files.analyze": {"json": {"content": "one\ntwo\n"}},
        "user.update_settings": {"json": {"autoApprovalEnabled": True}},
    }
    return arguments.get(logical, {})


async def test_unknown_method_is_417_with_frappe_body(client: httpx.AsyncClient) -> None:
    dotted = await call(client, "nonexistent_app.api.do_things")
    assert not_found_message(dotted) == (
        "Failed to get method for command nonexistent_app.api.do_things "
        "with No module named 'nonexistent_app'"
    )
    assert dotted.headers["content-type"].startswith("application/json")
    dotless = await call(client, "do_things", verb="GET")
    assert not_found_message(dotless) == (
        "Failed to get method for command do_things with 'do_things'"
    )


async def test_other_paths_answer_json_errors(client: httpx.AsyncClient) -> None:
    response = await client.get("api/resource/User")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert "exc_type" in response.json()


async def test_every_profile_name_is_answered(client: httpx.AsyncClient) -> None:
    """One backend for all ~30 names: a loop keeps the suite fast; messages name the method."""
    for _profile, logical, method in ALL_NAMES:
        sid = await login(client)
        response = await call(client, method, sid=sid, **request_for(logical))
        if logical == "chat.stream":  # Server-Sent Events, not a Frappe envelope
            assert response.status_code == 200, (method, response.text)
            assert response.headers["content-type"].startswith("text/event-stream")
            assert '"partial": false' in response.text.replace('"partial":false',
                                                               '"partial": false')
            assert response.text.endswith("data: [DONE]\n\n"), method
            continue
        if logical == "auth.logout":
            assert (response.status_code, response.json()) == (200, {}), method
            continue
        assert response.status_code == 200, (method, response.text)
        message = response.json()["message"]
        if logical == "auth.login":
            assert message == "Logged In", method
        elif logical == "auth.verify_session":
            assert message == EMAIL, method
        elif logical == "chat.send_message":
            assert message["status"] == 200 and "hello" in message["content"], method
        elif logical == "user.get_settings":
            assert message["autoApprovalEnabled"] in (False, True), method
        elif logical in ("auth.check_browser", "auth.refresh_token"):  # no id / token given
            assert message["success"] is False and message["error"].startswith("Invalid"), method
        elif logical == "workspace.index":
            assert message == {"success": True, "workspace_id": "default", "indexed": 1,
                               "removed": 0, "chunks": 0}, method
        elif logical == "files.upload":
            assert message["success"] is True and message["data"]["size"] == 6, method
        else:
            assert message.get("success", True) is True, (method, message)


def _guest_expectation(profile: str, logical: str, auth: str) -> str:
    if (logical in ("auth.login", "auth.logout", "auth.logout_token", "usage.get_stats")
            or auth == "none"):
        return "allowed"
    if auth == "access_token":
        return "in-band-401"
    if logical == "chat.send_message" and profile == "oropendola_ai":
        return "api-key-required"
    return "403"


async def test_guests_get_what_frappe_gives_them(client: httpx.AsyncClient) -> None:
    for profile, logical, method in ALL_NAMES:
        expected = _guest_expectation(profile, logical, PROFILES[profile][logical].auth)
        response = await call(client, method, json={})
        if expected == "403":
            assert response.status_code == 403, (method, response.text)
            assert response.json()["exc_type"] == "PermissionError"
            [message] = server_messages(response.json())
            assert method in message["message"]
            assert message["title"] == "Method Not Allowed"
        elif expected == "in-band-401":
            assert response.status_code == 401, method
            assert response.json() == {"message": {"success": False, "error": "Unauthorized"}}
        elif expected == "api-key-required":
            assert response.status_code == 200, method
            assert response.json() == {"message": {"status": 400, "error": "API key is required"}}
        else:
            assert response.status_code in (200, 401), method
            assert response.json().get("exc_type") != "PermissionError", method


@pytest.mark.parametrize(
    "logical",
    sorted(set(SEED) & set(AI) - {"auth.login", "auth.logout", "chat.send_message"}),
)
async def test_both_profiles_reach_the_same_handler(
    client: httpx.AsyncClient, logical: str
) -> None:
    sid = await login(client)
    args = request_for(logical)
    seed = await call(client, SEED[logical].method, sid=sid, **args)
    ai = await call(client, AI[logical].method, sid=sid, **args)
    assert seed.status_code == ai.status_code == 200
    assert seed.json() == ai.json()


async def test_settings_saved_under_one_name_are_read_under_the_other(
    client: httpx.AsyncClient,
) -> None:
    sid = await login(client)
    saved = await call(
        client,
        SEED["user.update_settings"].method,
        sid=sid,
        json={"autoApprovalEnabled": True, "toggles": {"alwaysAllowReadOnly": True}},
    )
    assert saved.json()["message"]["success"] is True
    read = await call(client, AI["user.get_settings"].method, sid=sid, verb="GET")
    settings = read.json()["message"]
    assert settings["autoApprovalEnabled"] is True
    assert settings["toggles"]["alwaysAllowReadOnly"] is True
    assert settings["toggles"]["alwaysAllowWrite"] is False  # merged, not replaced


async def test_published_app_profile_rejects_seed_names(tmp_path: Path) -> None:
    backend = await start_backend(data_dir=tmp_path, profiles=("oropendola_ai",))
    try:
        backend.store.add_user(EMAIL, PASSWORD)
        async with make_client(backend) as client:
            assert (await call(client, "ping")).json() == {"message": "pong"}
            sid = await login(client)
            seed_only = {ep.method for ep in SEED.values()} - {ep.method for ep in AI.values()}
            assert "oropendola.auth.login" in seed_only
            for method in sorted(seed_only):
                response = await call(client, method, sid=sid)
                assert not_found_message(response) == (
                    f"Failed to get method for command {method} with No module named 'oropendola'"
                )
            ok = await call(client, AI["auth.verify_session"].method, sid=sid)
            assert ok.json() == {"message": EMAIL}
    finally:
        await backend.close()


async def test_seed_profile_alone_rejects_published_names(tmp_path: Path) -> None:
    backend = await start_backend(data_dir=tmp_path, profiles=("oropendola",))
    try:
        backend.store.add_user(EMAIL, PASSWORD)
        async with make_client(backend) as client:
            response = await call(client, "login", json={"usr": EMAIL, "pwd": PASSWORD})
            assert not_found_message(response) == (
                "Failed to get method for command login with 'login'"
            )
            agent = await call(client, AI["chat.send_message"].method, json={"prompt": "x"})
            assert "No module named 'oropendola_ai'" in not_found_message(agent)
            seed = await call(
                client, SEED["auth.login"].method, json={"usr": EMAIL, "pwd": PASSWORD}
            )
            assert seed.json()["message"] == "Logged In"
    finally:
        await backend.close()


def test_unknown_profile_is_refused() -> None:
    from oropendola_ls.reference_backend.methods import build_methods

    with pytest.raises(ValueError, match="unknown profile"):
        build_methods(["oropendola", "frappe_cloud"])


async def test_profile_and_subscription_shapes(client: httpx.AsyncClient) -> None:
    sid = await login(client)
    info = (await call(client, AI["user.get_info"].method, sid=sid, verb="GET")).json()["message"]
    assert info["success"] is True
    profile = info["profile"]
    assert profile["email"] == EMAIL and profile["full_name"] == FULL_NAME
    assert (profile["first_name"], profile["last_name"]) == ("Jane", "Doe")
    assert profile["enabled"] == 1 and profile["created"]
    assert {"user_image", "created"} <= set(profile)
    assert set(info["usage"]) == {"total_requests_30_days", "total_requests_today", "last_used"}

    check = (await call(client, AI["subscription.check"].method, sid=sid)).json()["message"]
    assert check["success"] is True
    assert info["subscription"] == check["subscription"]
    sub = check["subscription"]
    assert sub["status"] == "Active" and sub["is_active"] is True and sub["is_trial"] is False
    assert sub["days_remaining"] == -1 and sub["end_date"] is None
    assert sub["quota"] == {"daily_limit": -1, "daily_remaining": -1, "usage_percent": 0}
    assert set(sub) == {
        "id", "status", "plan_name", "plan_type", "start_date", "end_date", "is_active",
        "is_trial", "days_remaining", "auto_renew", "expired_days_ago", "quota",
    }

    mine = (await call(client, AI["subscription.get_info"].method, sid=sid)).json()["message"]
    assert mine["success"] is True
    assert set(mine["subscription"]) == {
        "id", "plan_id", "plan_title", "status", "start_date", "end_date", "daily_quota",
        "monthly_budget",
    }
    assert set(mine["subscription"]["monthly_budget"]) == {"limit", "used", "remaining"}


async def test_seed_get_info_is_403_for_a_guest(client: httpx.AsyncClient) -> None:
    response = await call(client, SEED["user.get_info"].method, verb="GET")
    assert response.status_code == 403


async def test_default_settings(client: httpx.AsyncClient) -> None:
    sid = await login(client)
    settings = (await call(client, SEED["user.get_settings"].method, sid=sid)).json()["message"]
    assert settings["autoApprovalEnabled"] is False
    assert len(settings["toggles"]) == 10
    assert "alwaysAllowUpdateTodoList" in settings["toggles"]
    assert not any(settings["toggles"].values())


async def test_settings_accept_a_settings_key_as_json_text(client: httpx.AsyncClient) -> None:
    sid = await login(client)
    response = await call(
        client,
        AI["user.update_settings"].method,
        sid=sid,
        data={"settings": json.dumps({"toggles": {"alwaysAllowWrite": "true"}, "theme": "dark"})},
    )
    merged = response.json()["message"]["settings"]
    assert merged["toggles"]["alwaysAllowWrite"] is True
    assert merged["theme"] == "dark"
    assert merged["autoApprovalEnabled"] is False


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"json": [1, 2]}, "not a list"),
        ({"data": {"settings": "[1, 2]"}}, "settings must be a JSON object"),
        ({"json": {"settings": 5}}, "settings must be a JSON object"),
        ({"json": {"toggles": "yes please"}}, "toggles must be a JSON object"),
        ({"json": {"autoApprovalEnabled": "maybe"}}, "autoApprovalEnabled must be true or false"),
    ],
    ids=["list-body", "settings-list", "settings-number", "toggles-text", "bad-bool"],
)
async def test_invalid_settings_are_417(
    client: httpx.AsyncClient, kwargs: dict[str, Any], fragment: str
) -> None:
    sid = await login(client)
    response = await call(client, AI["user.update_settings"].method, sid=sid, **kwargs)
    assert fragment in not_found_message(response)
    unchanged = await call(client, AI["user.get_settings"].method, sid=sid)
    assert unchanged.json()["message"]["autoApprovalEnabled"] is False


async def test_settings_and_sessions_survive_a_restart(tmp_path: Path) -> None:
    first = await start_backend(data_dir=tmp_path)
    try:
        first.store.add_user(EMAIL, PASSWORD)
        async with make_client(first) as client:
            sid = await login(client)
            saved = await call(
                client,
                SEED["user.update_settings"].method,
                sid=sid,
                json={"toggles": {"alwaysAllowExecute": True}, "editor": "helix"},
            )
            assert saved.status_code == 200
    finally:
        await first.close()
    second = await start_backend(data_dir=tmp_path)
    try:
        async with make_client(second) as client:
            response = await call(client, AI["user.get_settings"].method, sid=sid)
            assert response.status_code == 200, response.text
            settings = response.json()["message"]
            assert settings["toggles"]["alwaysAllowExecute"] is True
            assert settings["editor"] == "helix"
    finally:
        await second.close()


async def test_chat_history_is_ordered_limited_and_user_scoped(
    client: httpx.AsyncClient, backend: RunningBackend
) -> None:
    sid = await login(client)
    send = SEED["chat.send_message"].method
    for prompt, conversation in (("first", "c1"), ("second", "c1"), ("other", "c2")):
        body = {"prompt": prompt, "conversation_id": conversation}
        reply = await call(client, send, sid=sid, json=body)
        assert reply.json()["message"]["conversation_id"] == conversation

    history = AI["chat.get_history"].method
    c1 = (await call(client, history, sid=sid, params={"conversation_id": "c1"}, verb="GET")).json()
    messages = c1["message"]["messages"]
    assert c1["message"]["conversation_id"] == "c1"
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert [messages[0]["content"], messages[2]["content"]] == ["first", "second"]
    assert all(m["timestamp"] for m in messages)

    latest = (await call(client, history, sid=sid)).json()["message"]
    assert latest["conversation_id"] == "c2" and latest["messages"][0]["content"] == "other"

    limited = await call(client, SEED["chat.get_history"].method, sid=sid,
                         params={"conversation_id": "c1", "limit": "1"}, verb="GET")
    [last] = limited.json()["message"]["messages"]
    assert last["role"] == "assistant" and "second" in last["content"]

    bad_limit = await call(client, history, sid=sid, params={"limit": "lots"}, verb="GET")
    assert "limit must be an integer" in not_found_message(bad_limit)

    backend.store.add_user(OTHER_EMAIL, OTHER_PASSWORD)
    omar = await login(client, OTHER_EMAIL, OTHER_PASSWORD)
    theirs = await call(client, history, sid=omar, params={"conversation_id": "c1"}, verb="GET")
    assert theirs.json()["message"]["messages"] == []
    assert (await call(client, history, sid=omar)).json()["message"] == {
        "conversation_id": None, "messages": []
    }


async def test_chat_reply_is_deterministic_and_honest(client: httpx.AsyncClient) -> None:
    sid = await login(client)
    send = AI["chat.send_message"].method
    one = (await call(client, send, sid=sid, json={"prompt": "What is 2+2?"})).json()["message"]
    two = (await call(client, send, sid=sid, json={"message": "What is 2+2?"})).json()["message"]
    assert one["content"] == two["content"]
    assert "What is 2+2?" in one["content"] and "reference backend" in one["content"]
    assert one["model"] == "reference-echo" and one["agent_mode"] is True
    assert one["conversation_id"] != two["conversation_id"]


async def test_chat_in_band_errors(client: httpx.AsyncClient, backend: RunningBackend) -> None:
    sid = await login(client)
    for method in (SEED["chat.send_message"].method, AI["chat.send_message"].method):
        response = await call(client, method, sid=sid, json={"prompt": "  "})
        assert response.status_code == 200
        assert response.json() == {"message": {"status": 400, "error": "Prompt is required"}}

    agent = AI["chat.send_message"].method
    bad_key = await call(client, agent, json={"prompt": "hi", "api_key": "not-a-key"})
    assert bad_key.json() == {"message": {"status": 401, "error": "Invalid API key"}}
    key, _secret = backend.store.generate_api_key(EMAIL)
    with_key = await call(client, agent, json={"prompt": "hi", "api_key": key})
    assert with_key.json()["message"]["status"] == 200
    usage = (await call(client, AI["user.get_info"].method, sid=sid)).json()["message"]["usage"]
    assert usage["total_requests_today"] == 1 and usage["last_used"]


async def test_workspace_and_files_seed_shapes(client: httpx.AsyncClient) -> None:
    sid = await login(client)
    index = await call(client, SEED["workspace.index"].method, sid=sid,
                       data={"files": json.dumps([{"path": "a"}, {"path": "b"}])})
    assert index.json()["message"]["indexed"] == 2
    not_list = await call(client, SEED["workspace.index"].method, sid=sid, json={"files": 3})
    assert "files must be a list" in not_found_message(not_list)
    search = await call(client, AI["workspace.search"].method, sid=sid, json={"query": "x"})
    assert search.json() == {"message": {"success": True, "data": {"results": []}}}
    memory = await call(client, AI["workspace.get_memory"].method, sid=sid)
    assert memory.json()["message"]["workspaces"][0]["files"] == 2
    no_file = await call(client, SEED["files.upload"].method, sid=sid)
    assert "No file attached" in not_found_message(no_file)
    analyzed = await call(client, SEED["files.analyze"].method, sid=sid,
                          json={"content": "a\nb\nc"})
    result = analyzed.json()["message"]["data"]["result"]
    assert (result["characters"], result["lines"]) == (5, 3)


async def test_query_string_arguments_reach_the_method(client: httpx.AsyncClient) -> None:
    response = await call(
        client, "login", verb="GET", params={"usr": EMAIL, "pwd": PASSWORD}
    )
    assert response.json()["message"] == "Logged In"


async def test_invalid_json_body_is_417(client: httpx.AsyncClient) -> None:
    response = await call(
        client, "ping", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert "Invalid JSON" in not_found_message(response)

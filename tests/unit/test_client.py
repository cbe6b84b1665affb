"""BackendClient over real loopback HTTP against small Frappe-like aiohttp servers."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import TYPE_CHECKING

import pytest
from aiohttp import web

from oropendola_ls import __version__
from oropendola_ls.backend.envelope import parse_retry_after
from oropendola_ls.backend.endpoints import BackendConfig, BackendConfigError, Endpoint
from oropendola_ls.backend.errors import (
    BackendError,
    BackendRequestError,
    BackendUnavailableError,
    BadResponseError,
    EndpointUnsupportedError,
    InvalidCredentialsError,
    NotSignedInError,
    RateLimitedError,
    SessionExpiredError,
)
from oropendola_ls.backend.session import Credentials

if TYPE_CHECKING:
    from conftest import FakeFrappe, MakeClient, StartBackend

SID = "3f1c9a7be0d24c55a1e3c2b9d8f7a6e5b4c3d2e1f0a9b8c7d6e5f4a3"
API_KEY = "k3y-0f-jane"
API_SECRET = "s3cr3t-api-secret-value-4242"
PASSWORD = "correct horse battery staple"

VERIFY = "oropendola.auth.verify_session"
HISTORY = "oropendola.chat.get_history"
SEND = "oropendola.chat.send_message"
ALT_HISTORY = "ai_assistant.api.chat.get_conversation_history"


@pytest.fixture
async def backend(start_backend: StartBackend) -> FakeFrappe:
    return await start_backend()


# -- envelope ---------------------------------------------------------------------------------


async def test_get_sends_query_and_unwraps_message(
    backend: FakeFrappe, make_client: MakeClient,
) -> None:
    backend.on(HISTORY, lambda: backend.ok([{"role": "user", "content": "hi"}]))
    client = make_client(backend.url)
    result = await client.call(
        "chat.get_history", {"conversation_id": "c1", "limit": 5, "tags": ["a"], "skip": None}
    )
    assert result == [{"role": "user", "content": "hi"}]
    hit = backend.last(HISTORY)
    assert hit.verb == "GET"
    assert hit.query == {"conversation_id": "c1", "limit": "5", "tags": '["a"]'}
    assert hit.headers["User-Agent"] == f"oropendola-ls/{__version__}"
    assert hit.headers["Accept"] == "application/json"


async def test_post_sends_json_body(backend: FakeFrappe, make_client: MakeClient) -> None:
    backend.on(SEND, lambda: backend.ok({"content": "hello", "conversation_id": "c9"}))
    client = make_client(backend.url)
    result = await client.call("chat.send_message", {"message": "hi", "context": {"a": 1}})
    assert result == {"content": "hello", "conversation_id": "c9"}
    hit = backend.last(SEND)
    assert hit.verb == "POST"
    assert hit.headers["Content-Type"] == "application/json"
    assert hit.json() == {"message": "hi", "context": {"a": 1}}


async def test_empty_body_is_none_and_extra_keys_are_dropped(
    backend: FakeFrappe, make_client: MakeClient
) -> None:
    backend.on("oropendola.user.get_settings", lambda: backend.raw({}))
    backend.on(
        "oropendola.user.get_info",
        lambda: backend.raw({"data": 1, "home_page": "/app", "_server_messages": "[]"}),
    )
    client = make_client(backend.url)
    assert await client.call("user.get_settings") is None
    assert await client.call("user.get_info") == {"data": 1}


async def test_unknown_logical_name_makes_no_request(
    backend: FakeFrappe, make_client: MakeClient,
) -> None:
    client = make_client(backend.url)
    with pytest.raises(EndpointUnsupportedError, match=r"no\.such"):
        await client.call("no.such")
    config = BackendConfig.create(backend.url, profile="oropendola_ai")
    with pytest.raises(EndpointUnsupportedError, match="endpoints"):
        await make_client(config).call("chat.stream")
    assert backend.hits == []


# -- auth headers and cookies -----------------------------------------------------------------


async def test_auth_headers_sent_explicitly(backend: FakeFrappe, make_client: MakeClient) -> None:
    backend.on(VERIFY, lambda: backend.ok("jane@example.com"))
    client = make_client(backend.url)

    await client.call("auth.verify_session")
    bare = backend.last(VERIFY).headers
    assert "Cookie" not in bare and "Authorization" not in bare
    assert "X-Frappe-CSRF-Token" not in bare

    client.credentials = Credentials(sid=SID)
    await client.call("auth.verify_session")
    headers = backend.last(VERIFY).headers
    assert headers["Cookie"] == f"sid={SID}"
    assert "Authorization" not in headers and "X-Frappe-CSRF-Token" not in headers

    client.credentials = Credentials(api_key=API_KEY, api_secret=API_SECRET, csrf_token="csrf-123")
    await client.call("auth.verify_session")
    headers = backend.last(VERIFY).headers
    assert headers["Authorization"] == f"token {API_KEY}:{API_SECRET}"
    assert headers["X-Frappe-CSRF-Token"] == "csrf-123"
    assert "Cookie" not in headers


async def test_auth_none_endpoint_gets_no_credentials(
    backend: FakeFrappe, make_client: MakeClient,
) -> None:
    backend.on("oropendola.auth.login", lambda: backend.ok("Logged In"))
    client = make_client(backend.url, credentials=Credentials(sid=SID, api_key=API_KEY,
                                                              api_secret=API_SECRET))
    await client.call("auth.login", {"usr": "a", "pwd": "b"})
    headers = backend.last("oropendola.auth.login").headers
    assert "Cookie" not in headers and "Authorization" not in headers


async def test_cookie_jar_is_not_used(backend: FakeFrappe, make_client: MakeClient) -> None:
    def with_cookie() -> web.StreamResponse:
        response = backend.ok("x")
        response.set_cookie("sid", "server-set-sid-value")
        response.set_cookie("other", "tracking")
        return response

    backend.on(VERIFY, with_cookie)
    client = make_client(backend.url)
    await client.call("auth.verify_session")
    await client.call("auth.verify_session")
    assert "Cookie" not in backend.last(VERIFY).headers
    assert client.credentials is None


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "error", "text"),
    [
        ({"success": False, "error": "Unauthorized access"}, BackendRequestError,
         "Unauthorized access"),
        ({"success": False, "message": "Auth request expired"}, BackendRequestError,
         "Auth request expired"),
        ({"status": 400, "error": "API key is required"}, BackendRequestError,
         "API key is required"),
        ({"status": 500, "error": "Model failed", "message": "try later"}, BackendRequestError,
         "Model failed: try later"),
        ({"error": "boom"}, BackendRequestError, "boom"),
        ({"status": 401, "error": "Invalid or expired API key"}, NotSignedInError,
         "Invalid or expired API key"),
        ({"status": 403, "error": "Forbidden here"}, NotSignedInError, "Forbidden here"),
        ({"status": 429, "error": "Daily quota used"}, RateLimitedError, "Daily quota used"),
    ],
)
async def test_in_band_errors(
    backend: FakeFrappe, make_client: MakeClient, message: object, error: type[BackendError],
    text: str,
) -> None:
    backend.on(SEND, lambda: backend.ok(message))
    client = make_client(backend.url)
    with pytest.raises(error) as info:
        await client.call("chat.send_message", {"message": "hi"})
    assert type(info.value) is error
    assert text in str(info.value)
    assert backend.count(SEND) == 1  # never retried, not even the in-band 429


async def test_success_true_and_status_200_are_not_errors(
    backend: FakeFrappe, make_client: MakeClient
) -> None:
    backend.on(SEND, lambda: backend.ok({"success": True, "status": 200, "content": "ok"}))
    client = make_client(backend.url)
    assert (await client.call("chat.send_message"))["content"] == "ok"


async def test_error_envelope_uses_server_messages(
    backend: FakeFrappe, make_client: MakeClient,
) -> None:
    backend.on(SEND, lambda: backend.error(
        417, "ValidationError", "<strong>Message</strong> is required &amp; must be text"))
    backend.on(HISTORY,
               lambda: backend.error(404, "DoesNotExistError", "Conversation c1 not found"))
    backend.on("oropendola.user.get_info",
               lambda: backend.raw({"exc_type": "DoesNotExistError",
                                    "exception": "frappe.exceptions.DoesNotExistError: User x"},
                                   status=404))
    client = make_client(backend.url)
    with pytest.raises(BackendRequestError) as info:
        await client.call("chat.send_message", {})
    assert "Message is required & must be text" in str(info.value)
    assert "<strong>" not in str(info.value)
    assert info.value.status == 417
    assert backend.count(SEND) == 1
    with pytest.raises(BackendRequestError, match="Conversation c1 not found") as info:
        await client.call("chat.get_history")
    assert info.value.status == 404
    with pytest.raises(BackendRequestError, match="User x"):
        await client.call("user.get_info")


async def test_session_expired(backend: FakeFrappe, make_client: MakeClient) -> None:
    backend.on(VERIFY, lambda: backend.error(403, "PermissionError", "Not permitted",
                                             session_expired=1))
    backend.on(HISTORY, lambda: backend.ok([], session_expired=1))
    client = make_client(backend.url, credentials=Credentials(sid=SID))
    with pytest.raises(SessionExpiredError) as info:
        await client.call("auth.verify_session")
    assert info.value.status == 403
    with pytest.raises(SessionExpiredError):
        await client.call("chat.get_history")


@pytest.mark.parametrize("status", [401, 403])
async def test_401_403_not_signed_in(
    backend: FakeFrappe, make_client: MakeClient, status: int,
) -> None:
    backend.on(VERIFY, lambda: backend.error(status, "PermissionError", "Not permitted"))
    client = make_client(backend.url)
    with pytest.raises(NotSignedInError) as info:
        await client.call("auth.verify_session")
    assert type(info.value) is NotSignedInError
    assert info.value.status == status
    assert "Not permitted" in str(info.value)
    assert "refused the stored session" not in str(info.value)
    assert "oropendola-ls login" in str(info.value)

    client.credentials = Credentials(sid=SID)
    with pytest.raises(NotSignedInError, match="the backend refused the stored session"):
        await client.call("auth.verify_session")
    assert backend.count(VERIFY) == 2


async def test_other_4xx_is_request_error(backend: FakeFrappe, make_client: MakeClient) -> None:
    backend.on(SEND, lambda: backend.error(400, "CSRFTokenError", "Invalid Request"))
    client = make_client(backend.url)
    with pytest.raises(BackendRequestError, match="Invalid Request") as info:
        await client.call("chat.send_message")
    assert info.value.status == 400


# -- 417 "Failed to get method": profile fallback -------------------------------------------


async def test_method_missing_falls_back_to_other_profile_and_remembers(
    backend: FakeFrappe, make_client: MakeClient
) -> None:
    backend.on(ALT_HISTORY, lambda: backend.ok([{"role": "assistant"}]))
    config = BackendConfig.create(backend.url)
    client = make_client(config)
    assert await client.call("chat.get_history") == [{"role": "assistant"}]
    assert backend.count(HISTORY) == 1
    assert config.endpoint("chat.get_history") == Endpoint(ALT_HISTORY, "GET")
    assert await client.call("chat.get_history") == [{"role": "assistant"}]
    assert backend.count(HISTORY) == 1  # not asked again
    assert backend.count(ALT_HISTORY) == 2


async def test_alternative_that_answers_with_an_error_is_still_learned(
    backend: FakeFrappe, make_client: MakeClient
) -> None:
    backend.on(ALT_HISTORY, lambda: backend.error(403, "PermissionError", "Not permitted"))
    config = BackendConfig.create(backend.url)
    client = make_client(config)
    with pytest.raises(NotSignedInError):
        await client.call("chat.get_history")
    assert config.endpoint("chat.get_history") == Endpoint(ALT_HISTORY, "GET")


async def test_method_missing_on_both_profiles(
    backend: FakeFrappe, make_client: MakeClient,
) -> None:
    client = make_client(backend.url)
    with pytest.raises(EndpointUnsupportedError) as info:
        await client.call("chat.get_history")
    message = str(info.value)
    assert HISTORY in message and ALT_HISTORY in message and "`endpoints`" in message
    assert backend.count(HISTORY) == 1 and backend.count(ALT_HISTORY) == 1
    with pytest.raises(EndpointUnsupportedError, match="neither"):
        await client.call("chat.get_history")
    assert len(backend.hits) == 2  # the second call made no request


async def test_method_missing_without_alternative(
    backend: FakeFrappe, make_client: MakeClient,
) -> None:
    config = BackendConfig.create(backend.url, endpoints={"chat.get_history": "my.history"})
    client = make_client(config)
    with pytest.raises(EndpointUnsupportedError, match=r"my\.history") as info:
        await client.call("chat.get_history")
    assert "`endpoints`" in str(info.value)
    assert [hit.method for hit in backend.hits] == ["my.history"]


# -- 429 ---------------------------------------------------------------------------------------


def _too_many(retry_after: str | None) -> web.StreamResponse:
    headers = {"Retry-After": retry_after} if retry_after is not None else None
    body = {"exc_type": "TooManyRequestsError"}
    return web.json_response(body, status=429, headers=headers)


@pytest.mark.parametrize("verb_name", ["chat.get_history", "chat.send_message"])
async def test_429_retry_after_then_success(
    backend: FakeFrappe, make_client: MakeClient, verb_name: str
) -> None:
    method = HISTORY if verb_name == "chat.get_history" else SEND
    backend.on(method, lambda: _too_many("0.2"), lambda: backend.ok("done"))
    client = make_client(backend.url, backoff_base=5.0)  # a backoff would be far longer
    started = time.monotonic()
    assert await client.call(verb_name) == "done"
    elapsed = time.monotonic() - started
    assert backend.count(method) == 2  # a 429 was not processed: POST is retried too
    assert 0.2 <= elapsed < 2


async def test_429_with_long_retry_after_raises_at_once(
    backend: FakeFrappe, make_client: MakeClient
) -> None:
    backend.on(SEND, lambda: _too_many("3600"))
    client = make_client(backend.url, max_retry_after=60)
    with pytest.raises(RateLimitedError) as info:
        await client.call("chat.send_message")
    assert info.value.retry_after == 3600
    assert "try again in 3600 s" in str(info.value)
    assert backend.count(SEND) == 1


async def test_429_retries_are_bounded(backend: FakeFrappe, make_client: MakeClient) -> None:
    backend.on(HISTORY, lambda: _too_many("0"))
    client = make_client(backend.url, max_retries=2)
    with pytest.raises(RateLimitedError):
        await client.call("chat.get_history")
    assert backend.count(HISTORY) == 3


def test_parse_retry_after() -> None:
    assert parse_retry_after("120") == 120
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("inf") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    assert 85 <= (parse_retry_after(later) or 0) <= 91
    past = format_datetime(datetime.now(UTC) - timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(past) == 0


# -- 5xx, network errors, timeouts ----------------------------------------------------------


async def test_5xx_retried_for_get(backend: FakeFrappe, make_client: MakeClient) -> None:
    backend.on(HISTORY, lambda: backend.error(502, "BadGateway"), lambda: backend.ok(["x"]))
    client = make_client(backend.url)
    assert await client.call("chat.get_history") == ["x"]
    assert backend.count(HISTORY) == 2


async def test_5xx_gives_up_after_max_retries(backend: FakeFrappe, make_client: MakeClient) -> None:
    backend.on(HISTORY, lambda: backend.text("<h1>Service Unavailable</h1>", status=503))
    client = make_client(backend.url, max_retries=2)
    with pytest.raises(BackendUnavailableError) as info:
        await client.call("chat.get_history")
    assert info.value.status == 503
    assert "HTTP 503" in str(info.value) and f"127.0.0.1:{backend.port}" in str(info.value)
    assert backend.count(HISTORY) == 3


async def test_5xx_not_retried_for_post(backend: FakeFrappe, make_client: MakeClient) -> None:
    backend.on(SEND, lambda: backend.error(500, "ZeroDivisionError", "division by zero"))
    client = make_client(backend.url, max_retries=3)
    with pytest.raises(BackendUnavailableError, match="division by zero") as info:
        await client.call("chat.send_message", {"message": "hi"})
    assert info.value.status == 500
    assert backend.count(SEND) == 1


async def test_post_marked_idempotent_is_retried(
    backend: FakeFrappe, make_client: MakeClient,
) -> None:
    backend.on(SEND, lambda: backend.error(500, "Error"), lambda: backend.ok("ok"))
    client = make_client(backend.url)
    assert await client.call("chat.send_message", idempotent=True) == "ok"
    assert backend.count(SEND) == 2


async def test_connection_refused(closed_port: int, make_client: MakeClient) -> None:
    client = make_client(f"http://127.0.0.1:{closed_port}/", max_retries=1)
    with pytest.raises(BackendUnavailableError) as info:
        await client.call("chat.send_message", {"message": "hi"})
    message = str(info.value)
    assert message.startswith(f"Cannot reach the Oropendola backend at http://127.0.0.1:{closed_port}/")
    assert "connection refused" in message and "Check serverUrl" in message


async def test_post_retried_when_never_connected(
    closed_port: int, start_backend: StartBackend, make_client: MakeClient
) -> None:
    client = make_client(f"http://127.0.0.1:{closed_port}/", max_retries=8, backoff_base=0.1)

    async def come_up() -> FakeFrappe:
        await asyncio.sleep(0.05)
        late = await start_backend(port=closed_port)
        late.on(SEND, lambda: late.ok("sent once"))
        return late

    task = asyncio.create_task(come_up())
    assert await client.call("chat.send_message", {"message": "hi"}) == "sent once"
    assert (await task).count(SEND) == 1


async def _slow(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(1.5)
    return web.json_response({"message": "late"})


async def test_read_timeout_get_not_retried(backend: FakeFrappe, make_client: MakeClient
                                            ) -> None:
    """The timeout is what the user waits: a slow backend is not asked max_retries more times."""
    backend.routes[HISTORY] = _slow
    client = make_client(backend.url, timeout=0.3, max_retries=1)
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError) as info:
        await client.call("chat.get_history")
    assert "timed out after 0.3 s (apiRequestTimeout)" in str(info.value)
    assert time.monotonic() - started < 1.0
    assert backend.count(HISTORY) == 1


async def test_read_timeout_post_not_retried(backend: FakeFrappe, make_client: MakeClient) -> None:
    backend.routes[SEND] = _slow
    client = make_client(backend.url, timeout=0.3, max_retries=3)
    with pytest.raises(BackendUnavailableError, match="apiRequestTimeout"):
        await client.call("chat.send_message", {"message": "hi"})
    assert backend.count(SEND) == 1


async def test_dropped_connection_post_not_retried(
    backend: FakeFrappe, make_client: MakeClient,
) -> None:
    async def drop(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        await asyncio.sleep(0.1)
        return web.Response()

    backend.routes[SEND] = drop
    backend.routes[HISTORY] = drop
    client = make_client(backend.url, max_retries=2)
    with pytest.raises(BackendUnavailableError, match="connection broke"):
        await client.call("chat.send_message", {"message": "hi"})
    assert backend.count(SEND) == 1
    with pytest.raises(BackendUnavailableError):
        await client.call("chat.get_history")
    assert backend.count(HISTORY) == 3


# -- not a Frappe answer ----------------------------------------------------------------------


async def test_html_body_is_bad_response(backend: FakeFrappe, make_client: MakeClient) -> None:
    backend.on(HISTORY, lambda: backend.text("<!doctype html><html>Welcome to nginx</html>"))
    client = make_client(backend.url)
    with pytest.raises(BadResponseError) as info:
        await client.call("chat.get_history")
    message = str(info.value)
    assert f"127.0.0.1:{backend.port}" in message
    assert "HTTP 200" in message and "text/html" in message and "serverUrl" in message
    assert backend.count(HISTORY) == 1


async def test_truncated_json_is_bad_response(backend: FakeFrappe, make_client: MakeClient) -> None:
    backend.on(HISTORY, lambda: backend.text('{"message": {"content": "hel',
                                             content_type="application/json"))
    client = make_client(backend.url)
    with pytest.raises(BadResponseError, match="application/json"):
        await client.call("chat.get_history")


async def test_json_that_is_not_an_envelope_is_bad_response(
    backend: FakeFrappe, make_client: MakeClient
) -> None:
    backend.on(HISTORY, lambda: backend.raw([1, 2, 3]))
    with pytest.raises(BadResponseError):
        await make_client(backend.url).call("chat.get_history")


async def test_redirect_is_not_followed(backend: FakeFrappe, make_client: MakeClient) -> None:
    backend.on(HISTORY, lambda: backend.text("", status=302,
                                             headers={"Location": "https://login.example/"}))
    client = make_client(backend.url)
    with pytest.raises(BadResponseError, match=r"redirect to https://login\.example/") as info:
        await client.call("chat.get_history")
    assert info.value.status == 302


# -- failover ---------------------------------------------------------------------------------


async def test_failover_to_fallback_and_back(
    closed_port: int, start_backend: StartBackend, make_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="oropendola_ls")
    fallback = await start_backend()
    fallback.on(HISTORY, lambda: fallback.ok("from fallback"))
    primary_url = f"http://127.0.0.1:{closed_port}/"
    config = BackendConfig.create(primary_url, fallback_urls=[fallback.url])
    client = make_client(config, max_retries=0)

    assert await client.call("chat.get_history") == "from fallback"
    assert config.active_url == fallback.url and config.on_fallback
    assert fallback.count("ping") == 1
    switch = [r.getMessage() for r in caplog.records if "switched to" in r.getMessage()]
    assert switch and primary_url in switch[0] and fallback.url in switch[0]

    assert await client.recheck_primary() is False  # still down
    assert config.active_url == fallback.url

    primary = await start_backend(port=closed_port)
    primary.on(HISTORY, lambda: primary.ok("from primary"))
    assert await client.recheck_primary() is True
    assert config.active_url == primary_url and not config.on_fallback
    assert await client.call("chat.get_history") == "from primary"
    back = [r.getMessage() for r in caplog.records if "switched back" in r.getMessage()]
    assert back and primary_url in back[0] and fallback.url in back[0]


async def test_post_fails_over_when_primary_refuses(
    closed_port: int, start_backend: StartBackend, make_client: MakeClient
) -> None:
    fallback = await start_backend()
    fallback.on(SEND, lambda: fallback.ok("sent"))
    config = BackendConfig.create(f"http://127.0.0.1:{closed_port}/", fallback_urls=[fallback.url])
    client = make_client(config, max_retries=0)
    assert await client.call("chat.send_message", {"message": "hi"}) == "sent"
    assert fallback.count(SEND) == 1


async def test_periodic_primary_recheck_at_start_of_call(
    closed_port: int, start_backend: StartBackend, make_client: MakeClient
) -> None:
    fallback = await start_backend()
    fallback.on(HISTORY, lambda: fallback.ok("fallback"))
    primary_url = f"http://127.0.0.1:{closed_port}/"
    config = BackendConfig.create(primary_url, fallback_urls=[fallback.url])
    client = make_client(config, max_retries=0, primary_recheck_interval=0.2)
    assert await client.call("chat.get_history") == "fallback"
    primary = await start_backend(port=closed_port)
    primary.on(HISTORY, lambda: primary.ok("primary"))
    assert await client.call("chat.get_history") == "fallback"  # too soon to recheck
    assert primary.count("ping") == 0
    await asyncio.sleep(0.25)
    assert await client.call("chat.get_history") == "primary"
    assert primary.count("ping") == 1


async def test_failover_on_repeated_5xx(
    start_backend: StartBackend, make_client: MakeClient,
) -> None:
    primary = await start_backend()
    fallback = await start_backend()
    primary.on(HISTORY, lambda: primary.text("Bad Gateway", status=502))
    primary.on("ping", lambda: primary.text("Bad Gateway", status=502))
    fallback.on(HISTORY, lambda: fallback.ok("ok"))
    config = BackendConfig.create(primary.url, fallback_urls=[fallback.url])
    client = make_client(config, max_retries=3)
    assert await client.call("chat.get_history") == "ok"
    assert primary.count(HISTORY) == 2
    assert config.active_url == fallback.url


async def test_no_healthy_candidate(closed_port: int, start_backend: StartBackend,
                                    make_client: MakeClient) -> None:
    sick = await start_backend()
    sick.on("ping", lambda: sick.text("<html>maintenance</html>"))  # 200 but not JSON
    config = BackendConfig.create(f"http://127.0.0.1:{closed_port}/", fallback_urls=[sick.url])
    client = make_client(config, max_retries=0)
    with pytest.raises(BackendUnavailableError, match="connection refused"):
        await client.call("chat.get_history")
    assert config.active_url == config.primary_url
    assert sick.count("ping") == 1 and sick.count(HISTORY) == 0


async def test_check_health(backend: FakeFrappe, closed_port: int, make_client: MakeClient) -> None:
    client = make_client(backend.url)
    assert await client.check_health(backend.url) is True
    assert await client.check_health(f"http://127.0.0.1:{closed_port}") is False
    backend.on("ping", lambda: backend.error(503, "SessionStopped"))
    assert await client.check_health(backend.url) is False
    with pytest.raises(BackendConfigError):
        await client.check_health("http://example.com/")


# -- sign-in ----------------------------------------------------------------------------------


def _login_ok() -> web.StreamResponse:
    response = web.json_response(
        {"message": "Logged In", "home_page": "/app", "full_name": "Jane Doe"}
    )
    response.set_cookie("sid", SID, httponly=True, samesite="Lax")
    response.set_cookie("system_user", "yes")
    response.set_cookie("full_name", "Jane%20Doe")
    response.set_cookie("user_id", "jane%40example.com")
    return response


async def test_login_sets_credentials_from_set_cookie(
    backend: FakeFrappe, make_client: MakeClient,
) -> None:
    backend.on("login", _login_ok)
    backend.on(VERIFY, lambda: backend.ok("jane@example.com"))
    config = BackendConfig.create(backend.url, profile="oropendola_ai",
                                  endpoints={"auth.verify_session": VERIFY})
    client = make_client(config)
    credentials = await client.login("Jane", PASSWORD)
    assert credentials == Credentials(user="jane@example.com", full_name="Jane Doe", sid=SID)
    assert client.credentials is credentials
    assert backend.last("login").json() == {"usr": "Jane", "pwd": PASSWORD}
    assert "Cookie" not in backend.last("login").headers
    assert await client.verify_session() == "jane@example.com"
    assert backend.last(VERIFY).headers["Cookie"] == f"sid={SID}"


async def test_login_with_seed_profile_falls_back_to_frappe_login(
    backend: FakeFrappe, make_client: MakeClient
) -> None:
    backend.on("login", _login_ok)
    config = BackendConfig.create(backend.url)
    client = make_client(config)
    assert (await client.login("jane@example.com", PASSWORD)).sid == SID
    assert config.endpoint("auth.login") == Endpoint("login", "POST", "none")


async def test_login_wrong_password(backend: FakeFrappe, make_client: MakeClient) -> None:
    backend.on("login", lambda: backend.raw(
        {"message": "Invalid login credentials", "exc_type": "AuthenticationError"}, status=401))
    config = BackendConfig.create(backend.url, profile="oropendola_ai")
    previous = Credentials(sid="old-session-id")
    client = make_client(config, credentials=previous)
    with pytest.raises(InvalidCredentialsError) as info:
        await client.login("jane@example.com", PASSWORD)
    assert str(info.value) == (
        f"Wrong email or password for 127.0.0.1:{backend.port}: Invalid login credentials"
    )
    assert client.credentials is previous
    assert backend.count("login") == 1


async def test_login_without_sid_is_bad_response(
    backend: FakeFrappe, make_client: MakeClient,
) -> None:
    backend.on("login", lambda: backend.raw({"verification": {"method": "OTP App"},
                                            "tmp_id": "abc"}))
    client = make_client(BackendConfig.create(backend.url, profile="oropendola_ai"))
    with pytest.raises(BadResponseError, match="no session cookie"):
        await client.login("jane@example.com", PASSWORD)
    assert client.credentials is None


async def test_verify_session(backend: FakeFrappe, make_client: MakeClient) -> None:
    client = make_client(backend.url)
    with pytest.raises(NotSignedInError):
        await client.verify_session()
    client.credentials = Credentials(user="x")  # nothing to authenticate with
    with pytest.raises(NotSignedInError):
        await client.verify_session()
    assert backend.hits == []

    backend.on(VERIFY, lambda: backend.ok("Guest"))
    client.credentials = Credentials(sid=SID)
    with pytest.raises(NotSignedInError, match="Guest"):
        await client.verify_session()


async def test_use_api_key(backend: FakeFrappe, make_client: MakeClient) -> None:
    async def verify(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") == f"token {API_KEY}:{API_SECRET}":
            return backend.ok("jane@example.com")
        return backend.error(401, "AuthenticationError", "Invalid API key pair")

    backend.routes[VERIFY] = verify
    previous = Credentials(user="old@example.com", sid="previous-sid")
    client = make_client(backend.url, credentials=previous)

    with pytest.raises(InvalidCredentialsError, match="Invalid API key pair") as info:
        await client.use_api_key(API_KEY, "wrong-secret-value")
    assert "wrong-secret-value" not in str(info.value)
    assert client.credentials is previous

    credentials = await client.use_api_key(API_KEY, API_SECRET)
    assert credentials == Credentials(user="jane@example.com", api_key=API_KEY,
                                      api_secret=API_SECRET)
    assert client.credentials is credentials


async def test_logout_best_effort(backend: FakeFrappe, make_client: MakeClient,
                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="oropendola_ls")
    backend.on("oropendola.auth.logout", lambda: backend.ok(None),
               lambda: backend.error(500, "Error", f"session {SID} gone"))
    client = make_client(backend.url, credentials=Credentials(sid=SID))
    await client.logout()
    assert client.credentials is None
    assert backend.last("oropendola.auth.logout").headers["Cookie"] == f"sid={SID}"

    client.credentials = Credentials(sid=SID)
    await client.logout()  # 500: logged, not raised
    assert client.credentials is None
    assert any("Sign-out request failed" in r.getMessage() for r in caplog.records)
    assert all(SID not in r.getMessage() for r in caplog.records)

    await client.logout()  # nothing held: no request
    assert backend.count("oropendola.auth.logout") == 2


# -- secrets never leak -----------------------------------------------------------------------


async def test_secrets_never_in_errors_or_logs(
    backend: FakeFrappe, closed_port: int, make_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    echoed: list[str] = []

    async def echo_auth(request: web.Request) -> web.StreamResponse:
        # A careless backend that repeats the credentials it got in its error messages.
        leak = f"{request.headers.get('Cookie')} {request.headers.get('Authorization')}"
        echoed.append(leak)
        return backend.error(417, "ValidationError", f"bad request from {leak}")

    async def echo_inband(request: web.Request) -> web.StreamResponse:
        return backend.ok({"success": False, "error": f"got {request.headers.get('Cookie')}"})

    async def echo_401(request: web.Request) -> web.StreamResponse:
        return backend.error(401, "AuthenticationError",
                             f"unknown {request.headers.get('Authorization')}")

    backend.on("login", _login_ok)
    backend.routes[SEND] = echo_auth
    backend.routes[HISTORY] = echo_inband
    backend.routes[VERIFY] = echo_401
    backend.on("oropendola.user.get_info", lambda: backend.ok({"name": "Jane"}))
    config = BackendConfig.create(backend.url, endpoints={"auth.login": "login"})
    client = make_client(config)

    errors: list[BackendError] = []
    await client.login("jane@example.com", PASSWORD)
    client.credentials = Credentials(sid=SID, api_key=API_KEY, api_secret=API_SECRET)
    await client.call("user.get_info")
    for name in ("chat.send_message", "chat.get_history", "auth.verify_session"):
        with pytest.raises(BackendError) as info:
            await client.call(name)
        errors.append(info.value)
    with pytest.raises(InvalidCredentialsError) as bad_key:
        await client.use_api_key(API_KEY, API_SECRET)
    errors.append(bad_key.value)
    client.config = BackendConfig.create(f"http://127.0.0.1:{closed_port}/")
    with pytest.raises(BackendUnavailableError) as down:
        await client.call("chat.get_history")
    errors.append(down.value)
    await client.logout()

    assert echoed and all(SID in leak and API_SECRET in leak for leak in echoed)  # it did leak
    for error in errors:
        for text in (str(error), error.message, repr(error), *map(str, error.args)):
            assert SID not in text and API_SECRET not in text and PASSWORD not in text
    assert any("bad request from" in str(e) for e in errors)
    records = [r for r in caplog.records]
    assert any(r.name.startswith("httpcore") for r in records)  # DEBUG logging was on
    assert any("Set-Cookie" in r.getMessage() for r in records)  # headers were logged, masked
    for record in records:
        text = record.getMessage() + (record.exc_text or "")
        assert SID not in text and API_SECRET not in text and PASSWORD not in text, record.name
    assert SID not in repr(client) and API_SECRET not in repr(client)


async def test_request_debug_line(backend: FakeFrappe, make_client: MakeClient,
                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="oropendola_ls.backend.client")
    backend.on(HISTORY, lambda: backend.ok([]))
    await make_client(backend.url).call("chat.get_history")
    lines = [r.getMessage() for r in caplog.records if r.name == "oropendola_ls.backend.client"]
    assert any(
        "chat.get_history" in line and "GET" in line and HISTORY in line
        and f"127.0.0.1:{backend.port}" in line and "200" in line and "ms" in line
        for line in lines
    )



async def test_credential_query_params_masked_in_library_logs(
    backend: FakeFrappe, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ai_key = "ai-key-9c8b7a6f5e4d"
    backend.on("oropendola.user.get_info", lambda: backend.ok({"name": "Jane"}))
    await make_client(backend.url).call("user.get_info", {"api_key": ai_key, "x": "visible"})
    assert backend.last("oropendola.user.get_info").query["api_key"] == ai_key
    request_lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert request_lines and "x=visible" in request_lines[0]
    client_side = [r for r in caplog.records if not r.name.startswith("aiohttp")]  # not the fake
    assert all(ai_key not in r.getMessage() for r in client_side)

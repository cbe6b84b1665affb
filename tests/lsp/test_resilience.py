"""A backend that is down, slow, broken or of the other profile: clear errors, recovery, failover."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.conftest import BackendProcess, free_port, lsp_session, request

REQUEST_FAILED = types.LSPErrorCodes.RequestFailed


@contextlib.asynccontextmanager
async def raw_http_server(response: bytes, delay: float = 0.0) -> AsyncIterator[dict[str, object]]:
    """A loopback server that answers every request with ``response`` (a broken proxy, say).

    Counts connections, so a test can tell whether anything was sent.
    """
    seen: dict[str, object] = {"connections": 0, "first_at": None}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen["connections"] = int(seen["connections"]) + 1  # type: ignore[call-overload]
        seen["first_at"] = seen["first_at"] or time.monotonic()
        with contextlib.suppress(Exception):
            await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(delay)
            writer.write(response)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    seen["url"] = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    async with server:
        yield seen


def http_response(status: str, content_type: str, body: bytes) -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


async def test_initialize_does_not_touch_the_network(preset: str, config_dir: Path) -> None:
    (config_dir / "session.json").write_text("{}")
    reply = http_response("200 OK", "application/json", b'{"message": "pong"}')
    async with raw_http_server(reply) as seen:
        settings = {"serverUrl": seen["url"]}
        client_started = time.monotonic()
        async with lsp_session(preset, config_dir, settings) as client:
            answered = time.monotonic()
            assert client.init_result.server_info.name == "oropendola-ls"
            first = seen["first_at"]
            assert first is None or first > answered, "initialize waited for the backend"
            # Later requests do go to the backend: the counter is live.
            with pytest.raises(JsonRpcException):
                await request(client, "oropendola/signIn", {"username": "a@b.c", "password": "x"})
            assert int(seen["connections"]) >= 1  # type: ignore[call-overload]
        assert answered - client_started < 30


async def test_backend_down_then_back(preset: str, config_dir: Path,
                                      start_backend: Callable[..., BackendProcess]) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    async with lsp_session(preset, config_dir, {"serverUrl": url, "apiRequestTimeout": 5}) as client:
        with pytest.raises(JsonRpcException) as down:
            await request(client, "oropendola/signIn", {"username": "a@b.c", "password": "pw"})
        assert down.value.code == REQUEST_FAILED
        assert "Cannot reach the Oropendola backend" in down.value.message
        assert f"127.0.0.1:{port}" in down.value.message

        backend = start_backend(port)
        email, password, _ = backend.add_user()
        result = await request(client, "oropendola/signIn", {"username": email, "password": password})
        assert result["user"] == email


async def test_failover_to_fallback_and_back(preset: str, config_dir: Path, tmp_path: Path,
                                             start_backend: Callable[..., BackendProcess]) -> None:
    data = tmp_path / "shared-data"  # primary and fallback serve the same site (one database)
    fallback = start_backend(0, data=data)
    email, password, _ = fallback.add_user()
    primary_port = free_port()
    primary_url = f"http://127.0.0.1:{primary_port}/"
    settings = {"serverUrl": primary_url, "fallbackUrls": [fallback.url]}
    async with lsp_session(preset, config_dir, settings) as client:
        await request(client, "oropendola/signIn", {"username": email, "password": password})
        status = await request(client, "oropendola/status")
        assert status["backend"]["url"] == fallback.url
        assert status["backend"]["onFallback"] is True
        assert status["signedIn"] is True

        start_backend(primary_port, data=data)
        status = await request(client, "oropendola/status")  # status re-checks the primary
        assert status["backend"]["url"] == primary_url
        assert status["backend"]["onFallback"] is False
        assert (await request(client, "oropendola/userInfo"))["profile"]["email"] == email


async def test_profile_fallback_on_417(preset: str, config_dir: Path,
                                       start_backend: Callable[..., BackendProcess]) -> None:
    published = start_backend(0, "--profile", "oropendola_ai")  # answers only the real app's names
    email, password, _ = published.add_user()
    async with lsp_session(preset, config_dir, {"serverUrl": published.url}) as client:
        result = await request(client, "oropendola/signIn", {"username": email, "password": password})
        assert result["user"] == email
        assert (await request(client, "oropendola/userInfo"))["profile"]["email"] == email
        assert (await request(client, "oropendola/subscription"))["success"] is True


async def test_unsupported_endpoint_is_named(preset: str, config_dir: Path,
                                             start_backend: Callable[..., BackendProcess]) -> None:
    seed_only = start_backend(0, "--profile", "oropendola")
    email, password, _ = seed_only.add_user()
    settings = {"serverUrl": seed_only.url, "endpoints": {"user.get_info": "no.such.method"}}
    async with lsp_session(preset, config_dir, settings) as client:
        await request(client, "oropendola/signIn", {"username": email, "password": password})
        with pytest.raises(JsonRpcException) as unsupported:
            await request(client, "oropendola/userInfo")
        assert unsupported.value.code == REQUEST_FAILED
        assert "no.such.method" in unsupported.value.message
        assert "does not support user.get_info" in unsupported.value.message


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (http_response("200 OK", "text/html", b"<html><body>Welcome to nginx</body></html>"),
         "instead of a JSON envelope"),
        (http_response("200 OK", "application/json", b'{"message": {"user": "trunc'),
         "JSON"),
        (http_response("502 Bad Gateway", "text/html", b"<html>502</html>"), "502"),
    ],
    ids=["html", "truncated-json", "bad-gateway"],
)
async def test_garbage_from_the_backend(preset: str, config_dir: Path, reply: bytes,
                                        expected: str) -> None:
    async with raw_http_server(reply) as seen:
        async with lsp_session(preset, config_dir, {"serverUrl": seen["url"]}) as client:
            with pytest.raises(JsonRpcException) as bad:
                await request(client, "oropendola/signIn", {"username": "a@b.c", "password": "x"})
            assert bad.value.code == REQUEST_FAILED
            assert expected in bad.value.message
            assert (await request(client, "oropendola/status"))["signedIn"] is False


async def test_slow_backend_times_out(preset: str, config_dir: Path) -> None:
    reply = http_response("200 OK", "application/json", b'{"message": "Logged In"}')
    async with raw_http_server(reply, delay=5.0) as seen:
        settings = {"serverUrl": seen["url"], "apiRequestTimeout": 0.5}
        async with lsp_session(preset, config_dir, settings) as client:
            started = time.monotonic()
            with pytest.raises(JsonRpcException) as slow:
                await request(client, "oropendola/signIn", {"username": "a@b.c", "password": "x"})
            assert "timed out" in slow.value.message
            assert time.monotonic() - started < 4.5
            assert (await request(client, "oropendola/status"))["signedIn"] is False

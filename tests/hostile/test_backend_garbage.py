"""A backend that answers garbage, of every kind, to ONE server: clear errors, no memory blow-up.

Extends tests/lsp/test_resilience.py::test_garbage_from_the_backend (an HTML page with 200, a
502 page, truncated JSON — one server per case, each editor preset; the messages are checked
there) with what it does not cover: envelopes of the wrong shape, a body that never ends, and a
100 MB body with and without Content-Length. The backend is a raw loopback HTTP server in this
test whose answer is switched between requests; the 100 MB is produced by a generator while
it is sent, so neither side needs to hold it, and the server must refuse it early (above its
32 MiB limit) rather than download it: the test counts the bytes actually written and reads the
server's peak RSS (VmHWM) from /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pygls.exceptions import JsonRpcException

from tests.conftest import lsp_session, request

REQUEST_FAILED = -32803
HUGE = 100 * 1024 * 1024
CHUNK = 256 * 1024
MAX_PEAK_GROWTH_KIB = 64 * 1024  # the 32 MiB limit, plus its bookkeeping
Reply = Callable[[asyncio.StreamWriter], Any]


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def head(status: str, content_type: str, length: int | None) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{framing}\r\n"
            "Connection: close\r\n\r\n").encode()


def whole(status: str, content_type: str, body: bytes) -> Reply:
    async def reply(writer: asyncio.StreamWriter) -> None:
        writer.write(head(status, content_type, len(body)) + body)
        await writer.drain()
    return reply


class Backend:
    """The raw loopback server; ``reply`` is what it does with the next request."""

    def __init__(self) -> None:
        self.reply: Reply = whole("200 OK", "application/json", b'{"message": "pong"}')
        self.sent = 0  # body bytes written for the current reply

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.readuntil(b"\r\n\r\n")
            await self.reply(writer)
        writer.close()

    def huge(self, chunked: bool) -> Reply:
        """100 MB of a JSON string, made while it is sent; stops when the client hangs up."""
        async def reply(writer: asyncio.StreamWriter) -> None:
            writer.write(head("200 OK", "application/json", None if chunked else HUGE))
            piece = b'{"message": "' + b"x" * (CHUNK - 13)
            while self.sent < HUGE:
                data = piece if self.sent == 0 else b"x" * CHUNK
                writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data)
                await writer.drain()
                self.sent += len(data)
        return reply

    def endless(self) -> Reply:
        """A body that trickles in, a byte at a time, for ever (with a length it never meets)."""
        async def reply(writer: asyncio.StreamWriter) -> None:
            writer.write(head("200 OK", "application/json", 10_000) + b'{"message": "')
            while True:
                await writer.drain()
                await asyncio.sleep(0.1)
                writer.write(b"x")
                self.sent += 1
        return reply


@contextlib.asynccontextmanager
async def garbage_backend() -> AsyncIterator[tuple[Backend, str]]:
    backend = Backend()
    server = await asyncio.start_server(backend.handle, "127.0.0.1", 0)
    async with server:
        yield backend, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"


SIGN_IN = ("oropendola/signIn", {"apiKey": "garbage-key", "apiSecret": "garbage-secret"})
USER_INFO = ("oropendola/userInfo", {})
SUBSCRIPTION = ("oropendola/subscription", {})
CASES: list[tuple[str, Callable[[Backend], Reply], tuple[str, dict[str, Any]], str]] = [
    ("html-200", lambda b: whole("200 OK", "text/html", b"<html><body>nginx</body></html>"),
     USER_INFO, "bad_response"),
    ("html-502", lambda b: whole("502 Bad Gateway", "text/html", b"<html>502</html>" * 100),
     SUBSCRIPTION, "backend_unavailable"),
    ("truncated", lambda b: whole("200 OK", "application/json", b'{"message": {"full_na'),
     SIGN_IN, "bad_response"),
    # Passed on as the result: it must at least be an object.
    ("message-42", lambda b: whole("200 OK", "application/json", b'{"message": 42}'),
     USER_INFO, "bad_response"),
    ("message-list", lambda b: whole("200 OK", "application/json", b'{"message": ["a", 1]}'),
     SUBSCRIPTION, "bad_response"),
    # Read as a profile by the sign-in: no user in it.
    ("message-object", lambda b: whole("200 OK", "application/json",
                                       b'{"message": {"unexpected": [1, {"deep": null}]}}'),
     SIGN_IN, "bad_response"),
    ("a-list", lambda b: whole("200 OK", "application/json", b"[1, 2, 3]"), USER_INFO,
     "bad_response"),
    ("not-utf8", lambda b: whole("200 OK", "application/json", b'{"message": "\xff\xfe"}'),
     SIGN_IN, "bad_response"),
    ("huge-with-length", lambda b: b.huge(chunked=False), USER_INFO, "bad_response"),
    ("huge-chunked", lambda b: b.huge(chunked=True), SIGN_IN, "bad_response"),
    ("endless", lambda b: b.endless(), SUBSCRIPTION, "backend_unavailable"),
]


async def test_garbage_answers_give_clear_errors_and_no_memory_blow_up(config_dir: Path) -> None:
    settings = {"apiKey": "garbage-key", "apiSecret": "garbage-secret", "apiRequestTimeout": 1.5}
    async with garbage_backend() as (backend, url):
        settings["serverUrl"] = url
        async with lsp_session("visual-studio-code", config_dir, settings) as client:
            pid = (await request(client, "oropendola/debugInfo"))["pid"]
            await request(client, "oropendola/status")
            baseline = status_kib(pid, "VmRSS")
            peak_before = status_kib(pid, "VmHWM")
            outcomes: dict[str, str] = {}
            for name, make, (method, params), kind in CASES:
                backend.sent = 0
                backend.reply = make(backend)
                started = time.monotonic()
                with pytest.raises(JsonRpcException) as refused:
                    await request(client, method, params)
                took = time.monotonic() - started
                error = refused.value
                data = error.data if isinstance(error.data, dict) else {}
                outcomes[name] = f"{method}: {error.code} {data.get('kind')}: {error.message}"
                assert error.code == REQUEST_FAILED, outcomes[name]
                assert data.get("kind") == kind, outcomes[name]
                assert "Traceback" not in error.message
                if name.startswith("huge"):
                    assert "larger than the 32 MiB limit" in error.message, outcomes[name]
                    assert backend.sent < 48 * 1024 * 1024, f"{name}: {backend.sent} bytes sent"
                    assert took < 10, f"{name} took {took:.1f} s"
                if name == "endless":
                    assert "1.5 s" in error.message or "timed out" in error.message, error.message
                    assert took < 6, f"endless body took {took:.1f} s"
                # The server is up and answers at once in between.
                assert (await request(client, "oropendola/checkCommand",
                                      {"command": "ls"}))["decision"] == "allow"
            peak = status_kib(pid, "VmHWM") - peak_before
            grown = status_kib(pid, "VmRSS") - baseline
            print(json.dumps(outcomes, indent=1), f"peak +{peak} KiB, RSS +{grown} KiB")
            assert peak < MAX_PEAK_GROWTH_KIB, f"peak RSS grew by {peak} KiB"
            assert grown < MAX_PEAK_GROWTH_KIB, f"RSS grew by {grown} KiB"

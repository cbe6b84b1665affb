"""Fixtures for the backend unit tests: tiny Frappe-like HTTP servers on real loopback sockets.

`FakeFrappe` answers ``/api/method/<method>`` (GET and POST) from a per-method handler table,
records every hit server-side, answers ``ping`` with ``{"message": "pong"}`` unless told
otherwise, and answers any other unknown method with Frappe's HTTP 417 "Failed to get method".
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from oropendola_ls.backend.client import BackendClient
from oropendola_ls.backend.endpoints import BackendConfig

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Hit:
    method: str
    verb: str
    headers: dict[str, str]
    query: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeFrappe:
    port: int = 0
    routes: dict[str, Handler] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def count(self, method: str) -> int:
        return sum(1 for hit in self.hits if hit.method == method)

    def last(self, method: str) -> Hit:
        return [hit for hit in self.hits if hit.method == method][-1]

    def on(self, method: str, *answers: Callable[[], web.StreamResponse]) -> None:
        """Answer ``method`` with each answer in turn, repeating the last one.

        For a handler that needs the request, set ``routes[method]`` to an async function.
        """
        queue = list(answers)

        async def handler(request: web.Request) -> web.StreamResponse:
            return (queue.pop(0) if len(queue) > 1 else queue[0])()

        self.routes[method] = handler

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        body = await request.read()
        self.hits.append(
            Hit(method, request.method, dict(request.headers), dict(request.query), body)
        )
        handler = self.routes.get(method)
        if handler is not None:
            return await handler(request)
        if method == "ping":
            return self.ok("pong")
        return self.method_missing(method)

    async def start(self) -> FakeFrappe:
        app = web.Application()
        app.router.add_route("*", "/api/method/{method}", self._dispatch)
        self.runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    # -- answers a Frappe backend (or a broken proxy) gives -----------------------------------

    @staticmethod
    def ok(value: Any = None, *, status: int = 200, **extra: Any) -> web.Response:
        body = {} if value is None and not extra else {"message": value, **extra}
        return web.json_response(body, status=status)

    @staticmethod
    def raw(body: Any, *, status: int = 200, headers: dict[str, str] | None = None
            ) -> web.Response:
        return web.json_response(body, status=status, headers=headers)

    @staticmethod
    def error(status: int, exc_type: str, *messages: str, **extra: Any) -> web.Response:
        """Frappe's error envelope: ``exc_type`` and ``_server_messages`` (JSON of JSON)."""
        body: dict[str, Any] = {"exc_type": exc_type, **extra}
        if messages:
            body["_server_messages"] = json.dumps(
                [json.dumps({"message": m, "title": "Message", "indicator": "red",
                             "raise_exception": 1}) for m in messages]
            )
        return web.json_response(body, status=status)

    @staticmethod
    def method_missing(method: str) -> web.Response:
        return FakeFrappe.error(
            417, "ValidationError",
            f"Failed to get method for command {method} with No module named 'oropendola'",
        )

    @staticmethod
    def text(body: str, *, status: int = 200, content_type: str = "text/html",
             headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(text=body, status=status, content_type=content_type,
                            headers=headers)


StartBackend = Callable[..., Awaitable[FakeFrappe]]
MakeClient = Callable[..., BackendClient]


@pytest.fixture
async def start_backend() -> AsyncIterator[StartBackend]:
    """``await start_backend(port=0)`` starts a `FakeFrappe` on 127.0.0.1; stopped at teardown."""
    started: list[FakeFrappe] = []

    async def start(port: int = 0) -> FakeFrappe:
        backend = await FakeFrappe(port=port).start()
        started.append(backend)
        return backend

    yield start
    for backend in started:
        await backend.stop()


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """``make_client(config_or_url, **kwargs)``: a fast-retrying `BackendClient`, closed after."""
    clients: list[BackendClient] = []

    def make(config: BackendConfig | str, **kwargs: Any) -> BackendClient:
        if isinstance(config, str):
            config = BackendConfig.create(config)
        kwargs.setdefault("max_retries", 2)
        kwargs.setdefault("backoff_base", 0.01)
        kwargs.setdefault("timeout", 5.0)
        client = BackendClient(config, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def closed_port() -> int:
    """A loopback port that was just bound and closed: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port

"""Socket.IO for the reference backend, authenticated like Frappe v15's realtime server.

The server accepts the default namespace ``/`` (what the VS Code extension joins) and the site
namespace ``/<site>`` (what Frappe v15 uses; the site is ``X-Frappe-Site-Name`` or the host name
the server was reached by, and both loopback names count for a loopback server). A connection
must send a ``Cookie`` header ("No cookie transmitted.") holding a live ``sid``, or an
``Authorization: token key:secret`` header; it then joins the rooms ``user:<email>``,
``website`` and ``all``. The handshake's ``auth`` payload is ignored, as Frappe ignores it. An
``Origin`` whose host name differs from ``Host`` is refused; a missing ``Origin`` is allowed,
because neither the extension nor python-socketio sends one. See protocol.md §6.

For tests and benches the server can also drop its clients, refuse ``/socket.io`` with 503 while
stopped, and report who is connected (the control endpoint, control.py, drives these).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from http.cookies import CookieError, SimpleCookie
from typing import Any, Literal
from urllib.parse import urlsplit

import socketio
from aiohttp import web
from socketio import exceptions as sio_exceptions

from oropendola_ls.backend.endpoints import is_loopback_host
from oropendola_ls.reference_backend import auth
from oropendola_ls.reference_backend.store import Store

log = logging.getLogger(__name__)

_LOOPBACK_SITES = frozenset({"localhost", "127.0.0.1", "::1"})
SOCKETIO_PATH = "socket.io"
_GOODBYE_TIMEOUT = 1.0
"""How long `close` waits for the goodbye packets to be taken by their connections."""

DropHow = Literal["server", "transport"]
"""``server``: a Socket.IO disconnect ("io server disconnect"); ``transport``: the connection is
cut without a goodbye (the client sees a transport close or error)."""


def _hostname(value: str | None) -> str | None:
    if not value:
        return None
    text = value if "://" in value else f"//{value}"
    try:
        return urlsplit(text).hostname
    except ValueError:
        return None


def _same_host_origin(origin: str | None, environ: dict[str, Any]) -> bool:
    """engineio's origin check: Frappe's "hostname(Origin) == hostname(Host)"."""
    if not origin:
        return True
    return _hostname(origin) is not None and _hostname(origin) == _hostname(
        environ.get("HTTP_HOST")
    )


def parse_cookie_header(header: str) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def site_names(environ: dict[str, Any]) -> set[str]:
    """The site names a handshake may use as its namespace."""
    names: set[str] = set()
    if site := environ.get("HTTP_X_FRAPPE_SITE_NAME"):
        names.add(str(site))
    host = _hostname(environ.get("HTTP_HOST"))
    if host:
        names.add(host)
        if is_loopback_host(host):
            names |= _LOOPBACK_SITES
    return names


class Realtime:
    """The Socket.IO server of one running backend."""

    def __init__(self, store: Store, *, session_expiry: float) -> None:
        self._store = store
        self._session_expiry = session_expiry
        self._namespaces: set[str] = {"/"}
        self._connected: dict[str, set[str]] = {}
        """Namespace → Socket.IO ids of the sockets connected there."""
        self._open_requests: dict[int, web.BaseRequest] = {}
        """``/socket.io`` requests in progress by id (a websocket's lasts as long as its
        connection); requests are not hashable."""
        self.running = True
        self.sio: Any = socketio.AsyncServer(
            async_mode="aiohttp",
            cors_allowed_origins=_same_host_origin,
            namespaces="*",
            logger=False,
            engineio_logger=False,
        )
        self.sio.on("connect", self._on_connect, namespace="*")
        self.sio.on("disconnect", self._on_disconnect, namespace="*")

    def attach(self, app: web.Application) -> None:
        """Serve Socket.IO on ``app``, which must have `gate` among its middlewares."""
        self.sio.attach(app, socketio_path=SOCKETIO_PATH)

    @web.middleware
    async def gate(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Answer ``/socket.io`` with 503 while stopped; track its requests for `drop` to cut."""
        path = request.path.strip("/")
        if path != SOCKETIO_PATH and not path.startswith(SOCKETIO_PATH + "/"):
            return await handler(request)
        if not self.running:
            return web.json_response(
                {"error": "Socket.IO is stopped on this backend (control action realtime/stop)"},
                status=503,
            )
        self._open_requests[id(request)] = request
        try:
            return await handler(request)
        finally:
            del self._open_requests[id(request)]

    def add_site(self, site: str) -> None:
        """Also emit on ``/<site>`` even before anyone connects there."""
        self._namespaces.add("/" + site.strip("/"))

    async def _on_connect(
        self, namespace: str, sid: str, environ: dict[str, Any], _auth: object = None
    ) -> None:
        refuse = sio_exceptions.ConnectionRefusedError
        if namespace != "/" and namespace[1:] not in site_names(environ):
            raise refuse("Invalid namespace")
        cookie_header = environ.get("HTTP_COOKIE")
        if not cookie_header:
            raise refuse("No cookie transmitted.")
        cookie_sid = parse_cookie_header(str(cookie_header)).get("sid")
        authorization = environ.get("HTTP_AUTHORIZATION")
        if not cookie_sid and not authorization:
            raise refuse("No authentication method used.")
        email = auth.user_for_socket(
            self._store, cookie_sid, authorization, self._session_expiry
        )
        if email is None:
            # Frappe asks get_user_info with these credentials and relays the HTTP failure.
            raise refuse("Unauthorized: Error: Forbidden")
        await self.sio.save_session(sid, {"user": email}, namespace=namespace)
        for room in (f"user:{email}", "website", "all"):
            await self.sio.enter_room(sid, room, namespace=namespace)
        self._namespaces.add(namespace)
        self._connected.setdefault(namespace, set()).add(sid)
        log.info("realtime: %s connected on %s", email, namespace)

    async def _on_disconnect(self, namespace: str, sid: str, _reason: object = None) -> None:
        self._connected.get(namespace, set()).discard(sid)
        log.debug("realtime: socket left %s", namespace)

    async def emit_to_user(self, email: str, event: str, data: Any) -> None:
        """Send ``event`` to room ``user:<email>`` on ``/`` and on every site namespace.

        Namespaces where nobody is in the room are skipped: the event would reach no one
        there, and encoding it for them halves a busy backend's event rate.
        """
        room = f"user:{email.strip().lower()}"
        rooms = self.sio.manager.rooms
        for namespace in sorted(self._namespaces):
            if rooms.get(namespace, {}).get(room):
                await self.sio.emit(event, data, room=room, namespace=namespace)

    def status(self) -> dict[str, Any]:
        """Whether Socket.IO is accepted, the open engine.io connections, sockets per namespace."""
        namespaces = sorted(self._namespaces | self._connected.keys())
        return {
            "running": self.running,
            "clients": len(self._live_connections()),
            "namespaces": {ns: len(self._connected.get(ns, ())) for ns in namespaces},
        }

    def _live_connections(self) -> dict[str, Any]:
        """engine.io id → socket, for the connections not closed yet."""
        return {eio_sid: conn for eio_sid, conn in self.sio.eio.sockets.items()
                if not conn.closed}

    async def drop(self, how: DropHow = "server") -> int:
        """Disconnect every client the way ``how`` says; returns how many connections there were."""
        eio = self.sio.eio
        connections = self._live_connections()
        if how == "server":
            for namespace, sids in list(self._connected.items()):
                for sid in list(sids):
                    await self.sio.disconnect(sid, namespace=namespace)
            for conn in connections.values():
                # JS Socket.IO's disconnect(true): the engine.io connection goes too.
                await conn.close(wait=False, reason=eio.reason.SERVER_DISCONNECT)
        elif how == "transport":
            for request in list(self._open_requests.values()):
                if request.transport is not None:
                    request.transport.abort()
            for eio_sid, conn in connections.items():
                await conn.close(wait=False, abort=True, reason=eio.reason.TRANSPORT_CLOSE)
                conn.queue.put_nowait(None)  # ends a long-poll still waiting for packets
                eio.sockets.pop(eio_sid, None)
        else:
            raise ValueError(f'how must be "server" or "transport", not {how!r}')
        return len(connections)

    async def stop(self) -> int:
        """Cut every connection and answer ``/socket.io`` with 503 until `start`."""
        self.running = False
        return await self.drop("transport")

    def start(self) -> None:
        self.running = True

    async def close(self) -> None:
        """Disconnect every client and stop background tasks."""
        eio = self.sio.eio
        connections = list(self._live_connections().values())
        for conn in connections:
            await conn.close(wait=False, reason=eio.reason.SERVER_DISCONNECT)
        # A polling client that stopped polling never takes its packet: wait for it only so long.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_GOODBYE_TIMEOUT):
                for conn in connections:
                    await conn.queue.join()
        eio.sockets.clear()
        await self.sio.shutdown()

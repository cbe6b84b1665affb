"""Socket.IO for the reference backend, authenticated like Frappe v15's realtime server.

The server accepts the default namespace ``/`` (what the VS Code extension joins) and the site
namespace ``/<site>`` (what Frappe v15 uses; the site is ``X-Frappe-Site-Name`` or the host name
the server was reached by, and both loopback names count for a loopback server). A connection
must send a ``Cookie`` header ("No cookie transmitted.") holding a live ``sid``, or an
``Authorization: token key:secret`` header; it then joins the rooms ``user:<email>``,
``website`` and ``all``. The handshake's ``auth`` payload is ignored, as Frappe ignores it. An
``Origin`` whose host name differs from ``Host`` is refused; a missing ``Origin`` is allowed,
because neither the extension nor python-socketio sends one. See protocol.md §6.
"""

from __future__ import annotations

import logging
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import urlsplit

import socketio
from aiohttp import web
from socketio import exceptions as sio_exceptions

from oropendola_ls.backend.endpoints import is_loopback_host
from oropendola_ls.reference_backend import auth
from oropendola_ls.reference_backend.store import Store

log = logging.getLogger(__name__)

_LOOPBACK_SITES = frozenset({"localhost", "127.0.0.1", "::1"})


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
        self.sio.attach(app, socketio_path="socket.io")

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
        log.info("realtime: %s connected on %s", email, namespace)

    async def _on_disconnect(self, namespace: str, sid: str, _reason: object = None) -> None:
        log.debug("realtime: socket left %s", namespace)

    async def emit_to_user(self, email: str, event: str, data: Any) -> None:
        """Send ``event`` to room ``user:<email>`` on ``/`` and on every site namespace."""
        room = f"user:{email.strip().lower()}"
        for namespace in sorted(self._namespaces):
            await self.sio.emit(event, data, room=room, namespace=namespace)

    async def close(self) -> None:
        """Disconnect every client and stop background tasks."""
        if self.sio.eio.sockets:
            await self.sio.eio.disconnect()
        await self.sio.shutdown()

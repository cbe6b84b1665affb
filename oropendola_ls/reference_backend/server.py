"""Starting and stopping the reference backend: in-process or blocking (`serve`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from oropendola_ls.backend.endpoints import is_loopback_host
from oropendola_ls.reference_backend.app import AccessLogger, create_app
from oropendola_ls.reference_backend.chat_engines import LLMConfig, engine_for
from oropendola_ls.reference_backend.context import (
    DEFAULT_AUTH_POLL_INTERVAL,
    DEFAULT_AUTH_REQUEST_LIFETIME,
    DEFAULT_STREAM_INTERVAL,
    ChatFailure,
    ChatPacing,
    ServerConfig,
    check_auth_timing,
    check_stream_interval,
)
from oropendola_ls.reference_backend.control import Control
from oropendola_ls.reference_backend.methods import build_methods
from oropendola_ls.reference_backend.realtime import DropHow, Realtime
from oropendola_ls.reference_backend.store import Store

log = logging.getLogger(__name__)

DEFAULT_PROFILES: tuple[str, ...] = ("oropendola", "oropendola_ai")
DEFAULT_SESSION_EXPIRY = 240 * 3600.0  # Frappe's default session_expiry, 240:00:00
_SHUTDOWN_TIMEOUT = 2.0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


class RunningBackend:
    """A backend serving on ``url`` until `close`; also an async context manager.

    The control operations (`drop_realtime` ... `fail_agent`) are those of the HTTP control
    endpoint, available in-process whether or not that endpoint is served; each returns the
    endpoint's JSON answer and raises `ValueError` where it answers 400.
    """

    def __init__(self, *, runner: web.AppRunner, store: Store, realtime: Realtime, host: str,
                 port: int, config: ServerConfig, control: Control) -> None:
        self._runner = runner
        self._closed = False
        self._control = control
        self.store = store
        self.realtime = realtime
        self.host = host
        self.port = port
        self.config = config
        self.url = f"http://{_url_host(host)}:{port}/"

    @property
    def profiles(self) -> tuple[str, ...]:
        return self.config.profiles

    async def emit_to_user(self, email: str, event: str, data: Any) -> None:
        """Emit ``event`` to the user's room on ``/`` and on the site namespaces."""
        await self.realtime.emit_to_user(email, event, data)

    async def drop_realtime(self, how: DropHow = "server") -> dict[str, Any]:
        return await self._control.drop_realtime(how)

    async def stop_realtime(self) -> dict[str, Any]:
        return await self._control.stop_realtime()

    async def start_realtime(self) -> dict[str, Any]:
        return await self._control.start_realtime()

    async def realtime_status(self) -> dict[str, Any]:
        return await self._control.realtime_status()

    async def emit(self, user: str, event: str, data: Any, count: int = 1,
                   rate: float = 0) -> dict[str, Any]:
        """The control ``emit``: ``count`` times at ``rate``/s, ``{seq}``/``{sent_ns}`` filled."""
        return await self._control.emit(user, event, data, count, rate)

    async def pace_chat(self, interval: float) -> dict[str, Any]:
        return await self._control.pace_chat(interval)

    async def hold_chat(self, hold: bool) -> dict[str, Any]:
        return await self._control.hold_chat(hold)

    async def fail_agent(self, status: int | None) -> dict[str, Any]:
        """The control ``agent/fail``: chat answers the in-band error ``status`` until None."""
        return await self._control.fail_agent(status)

    async def close(self) -> None:
        """Disconnect sockets, stop serving and close the database. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.realtime.close()
        finally:
            try:
                await self._runner.cleanup()
            finally:
                self.store.close()

    async def __aenter__(self) -> RunningBackend:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<RunningBackend {self.url} profiles={self.profiles}>"


def _check_options(profiles: Sequence[str], session_expiry: float,
                   stream_interval: float = DEFAULT_STREAM_INTERVAL,
                   auth_poll_interval: float = DEFAULT_AUTH_POLL_INTERVAL,
                   auth_request_lifetime: float = DEFAULT_AUTH_REQUEST_LIFETIME) -> ServerConfig:
    if isinstance(profiles, str):
        raise ValueError("profiles must be a sequence of profile names, not a string")
    if not profiles:
        raise ValueError("at least one profile is required")
    if not (isinstance(session_expiry, int | float) and math.isfinite(session_expiry)
            and session_expiry > 0):
        raise ValueError(f"session_expiry must be a positive number of seconds, "
                         f"not {session_expiry!r}")
    check_stream_interval(stream_interval)
    poll_interval, lifetime = check_auth_timing(auth_poll_interval, auth_request_lifetime)
    return ServerConfig(session_expiry=float(session_expiry), profiles=tuple(profiles),
                        auth_poll_interval=poll_interval, auth_request_lifetime=lifetime)


async def _bind(host: str, port: int) -> socket.socket:
    """One listening socket (IPv4 preferred), so port 0 yields a single real port."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    if not infos:
        raise OSError(f"cannot resolve {host!r}")
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        if sys.platform != "win32":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def _start(*, data_dir: Path, host: str, port: int, profiles: Sequence[str],
                 session_expiry: float, access_log: bool, control: bool,
                 stream_interval: float, llm: LLMConfig | None = None,
                 auth_poll_interval: float = DEFAULT_AUTH_POLL_INTERVAL,
                 auth_request_lifetime: float = DEFAULT_AUTH_REQUEST_LIFETIME,
                 ) -> RunningBackend:
    config = _check_options(profiles, session_expiry, stream_interval, auth_poll_interval,
                            auth_request_lifetime)
    methods = build_methods(config.profiles)
    store = Store(Path(data_dir))
    realtime = Realtime(store, session_expiry=config.session_expiry)
    pacing = ChatPacing(stream_interval)
    failure = ChatFailure()
    controller = Control(realtime, pacing, failure)
    app = create_app(store, config, methods, realtime, pacing=pacing,
                     control_endpoint=controller if control else None, engine=engine_for(llm),
                     failure=failure)
    if access_log:
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=_SHUTDOWN_TIMEOUT,
                               access_log_class=AccessLogger,
                               access_log=logging.getLogger(f"{__package__}.access"))
    else:
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=_SHUTDOWN_TIMEOUT,
                               access_log=None)
    try:
        await runner.setup()
        sock = await _bind(host, port)
        site = web.SockSite(runner, sock)
        await site.start()
    except BaseException:
        await runner.cleanup()
        store.close()
        raise
    bound_port = int(sock.getsockname()[1])
    realtime.add_site(host)
    if is_loopback_host(host):
        realtime.add_site("127.0.0.1")
        realtime.add_site("localhost")
    return RunningBackend(runner=runner, store=store, realtime=realtime, host=host,
                          port=bound_port, config=config, control=controller)


async def start_backend(
    *,
    data_dir: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    profiles: Sequence[str] = DEFAULT_PROFILES,
    session_expiry: float = DEFAULT_SESSION_EXPIRY,
    control: bool = False,
    stream_interval: float = DEFAULT_STREAM_INTERVAL,
    llm: LLMConfig | None = None,
    auth_poll_interval: float = DEFAULT_AUTH_POLL_INTERVAL,
    auth_request_lifetime: float = DEFAULT_AUTH_REQUEST_LIFETIME,
) -> RunningBackend:
    """Serve the reference backend from ``data_dir`` on ``host:port`` (0 picks a free port).

    ``profiles`` chooses which endpoint names are answered (``ping`` always is);
    ``session_expiry`` is how long, in seconds, a session lives after its last use;
    ``control`` serves the control endpoint (control.py) to loopback clients;
    ``stream_interval`` is the pause, in seconds, between a chat answer's text deltas;
    ``llm`` is the model that answers chat requests (default: the offline engine);
    ``auth_poll_interval`` is the ``poll_interval`` the browser sign-in's ``initiate_auth``
    asks for and ``auth_request_lifetime`` how long its requests live (seconds; the app's 2
    and 300).
    """
    return await _start(data_dir=data_dir, host=host, port=port, profiles=profiles,
                        session_expiry=session_expiry, access_log=False, control=control,
                        stream_interval=stream_interval, llm=llm,
                        auth_poll_interval=auth_poll_interval,
                        auth_request_lifetime=auth_request_lifetime)


async def _serve(*, data_dir: Path, host: str, port: int, profiles: Sequence[str],
                 session_expiry: float, control: bool, stream_interval: float,
                 llm: LLMConfig | None, auth_poll_interval: float,
                 auth_request_lifetime: float) -> int:
    try:
        backend = await _start(data_dir=data_dir, host=host, port=port, profiles=profiles,
                               session_expiry=session_expiry, access_log=True,
                               control=control, stream_interval=stream_interval, llm=llm,
                               auth_poll_interval=auth_poll_interval,
                               auth_request_lifetime=auth_request_lifetime)
    except OSError as exc:
        print(f"Cannot listen on {host}:{port}: {exc}", file=sys.stderr, flush=True)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    print(f"Listening on {backend.url.rstrip('/')}", flush=True)
    log.info("chat answers come from %s", "the offline reference engine" if llm is None
             else f"model {llm.model} at {llm.base_url}")
    try:
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        await backend.close()
    log.info("reference backend stopped")
    return 0


def serve(*, data_dir: Path, host: str, port: int, profiles: Sequence[str],
          session_expiry: float, control: bool = False,
          stream_interval: float = DEFAULT_STREAM_INTERVAL, llm: LLMConfig | None = None,
          auth_poll_interval: float = DEFAULT_AUTH_POLL_INTERVAL,
          auth_request_lifetime: float = DEFAULT_AUTH_REQUEST_LIFETIME) -> int:
    """Run the backend until SIGINT or SIGTERM; return the exit status.

    Prints exactly ``Listening on http://HOST:PORT`` (the real port) to stdout once the socket
    accepts connections. Invalid ``profiles``, ``session_expiry``, ``stream_interval``,
    ``auth_poll_interval`` or ``auth_request_lifetime`` raise `ValueError` first. The other
    options are as for `start_backend`.
    """
    build_methods(_check_options(profiles, session_expiry, stream_interval, auth_poll_interval,
                                 auth_request_lifetime).profiles)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(_serve(data_dir=data_dir, host=host, port=port, profiles=profiles,
                                  session_expiry=session_expiry, control=control,
                                  stream_interval=stream_interval, llm=llm,
                                  auth_poll_interval=auth_poll_interval,
                                  auth_request_lifetime=auth_request_lifetime))
    except KeyboardInterrupt:  # platforms without loop signal handlers
        return 0

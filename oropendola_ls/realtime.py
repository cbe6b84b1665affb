"""The realtime channel: one Socket.IO connection to the backend, kept up with our own backoff.

`RealtimeManager` is plain asyncio (no LSP). It connects with the session cookie the way Frappe's
realtime server expects (protocol.md §6), reports every state change to its listener, hands
every received event to the listener, and reconnects after anything but its own disconnect:
after ``reconnectInterval * 2^n`` seconds (capped at 30 s), at most ``maxReconnectAttempts``
times, then it gives up until a manual `retry`. python-socketio's own reconnection is off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlsplit

import attrs

if TYPE_CHECKING:
    import socketio

log = logging.getLogger(__name__)

ConnectionState = Literal["disconnected", "connecting", "connected", "reconnecting", "error"]

MAX_DELAY = 30.0
CONNECT_TIMEOUT = 20.0  # what the VS Code extension gives a connect
NOT_SIGNED_IN = "not signed in"

# Refusal texts of Frappe's realtime auth middleware (and ours) that mean "sign in again".
_AUTH_REFUSALS = ("unauthorized", "forbidden", "no cookie", "no authentication", "session")


def reconnect_delay(attempt: int, interval: float) -> float:
    """Seconds before reconnect ``attempt`` (1-based): interval * 2^(attempt-1), at most 30 s."""
    return min(interval * 2.0 ** max(attempt - 1, 0), MAX_DELAY)


@attrs.frozen
class RealtimeOptions:
    max_attempts: int = 10
    interval: float = 1.0
    """Seconds before the first reconnect attempt (the ``reconnectInterval`` setting is in ms)."""
    namespace: str = "auto"
    """``auto`` (the site namespace ``/<host>``, then ``/``), ``/``, or ``/<site>``."""
    connect_timeout: float = CONNECT_TIMEOUT


@attrs.frozen
class SocketSession:
    """Where to connect and with which Frappe session."""

    url: str
    sid: str


@attrs.frozen
class StateChange:
    state: ConnectionState
    previous: ConnectionState
    attempt: int
    max_attempts: int
    url: str | None = None
    delay: float | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``oropendola/connectionStatus`` notification's params."""
        result: dict[str, Any] = {
            "state": self.state,
            "previousState": self.previous,
            "attempt": self.attempt,
            "maxAttempts": self.max_attempts,
        }
        if self.delay is not None:
            result["delayMs"] = round(self.delay * 1000)
        if self.error is not None:
            result["error"] = self.error
        return result


class RealtimeListener(Protocol):
    def connection_changed(self, change: StateChange) -> None: ...

    def event_received(self, event: str, data: Any) -> None: ...


FailureKind = Literal["network", "namespace", "origin", "auth"]


class ConnectFailed(Exception):
    """One connect attempt failed. Only ``network`` failures are worth retrying: the others
    are the server's answer (a refused namespace, origin or session)."""

    def __init__(self, message: str, kind: FailureKind = "network") -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind

    @property
    def final(self) -> bool:
        return self.kind != "network"


def site_namespace(url: str) -> str:
    return "/" + (urlsplit(url).hostname or "")


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class RealtimeManager:
    """Keeps one Socket.IO connection up while there is a session; see the module docstring."""

    def __init__(
        self,
        listener: RealtimeListener,
        session: Callable[[], SocketSession | None],
        options: RealtimeOptions | None = None,
    ) -> None:
        self._listener = listener
        self._session = session
        self.options = options or RealtimeOptions()
        self.state: ConnectionState = "disconnected"
        self.attempt = 0
        self.last_error: str | None = None
        self.namespace: str | None = None
        self.connected_since: float | None = None
        self._client: socketio.AsyncClient | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._lost: asyncio.Future[str] | None = None
        self._refusals: dict[str, str] = {}
        self._url: str | None = None

    # -- control ---------------------------------------------------------------------------

    def start(self) -> None:
        """Connect unless a connection is up or being made. Idempotent."""
        if self._supervisor is None or self._supervisor.done():
            self.attempt = 0
            self._supervisor = asyncio.get_running_loop().create_task(
                self._supervise(), name="realtime"
            )

    async def retry(self) -> None:
        """Manual retry: attempts start again from zero and a connect starts now."""
        if self.state == "connected":
            return
        if self._supervisor is not None and not self._supervisor.done():
            self.attempt = 0
            self._wake.set()
            return
        self.start()

    async def stop(self, error: str | None = None) -> None:
        """Our own disconnect (sign-out, shutdown): no reconnect follows.

        With ``error``, the state becomes ``error`` (e.g. "not signed in") instead of
        ``disconnected``.
        """
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None and not supervisor.done():
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        await self._close_client()
        self.attempt = 0
        if error is not None:
            if self.state == "error":
                return  # already reported
            self.last_error = error
            self._set_state("error", error=error)
        elif self.state != "disconnected":
            self._set_state("disconnected")

    def configure(self, options: RealtimeOptions) -> bool:
        """Adopt new options; True when a live connection must be remade to honour them."""
        old, self.options = self.options, options
        return old.namespace != options.namespace

    def status(self) -> dict[str, Any]:
        """The ``connection`` block of ``oropendola/status``."""
        result: dict[str, Any] = {
            "state": self.state,
            "reconnectAttempts": self.attempt,
            "maxAttempts": self.options.max_attempts,
        }
        if self.namespace is not None and self.state == "connected":
            result["namespace"] = self.namespace
        if self.last_error:
            result["lastError"] = self.last_error
        return result

    # -- the connection loop ---------------------------------------------------------------

    async def _supervise(self) -> None:
        while True:
            session = self._session()
            if session is None:
                self.last_error = NOT_SIGNED_IN
                self._set_state("error", error=NOT_SIGNED_IN)
                return
            self._url = session.url
            if self.attempt == 0:
                self._set_state("connecting")
            try:
                await self._connect(session)
            except ConnectFailed as exc:
                self.last_error = exc.message
                log.info("realtime: connect to %s failed: %s", session.url, exc.message)
                if exc.final:
                    self.attempt = 0
                    self._set_state("error", error=exc.message)
                    return
            else:
                self.attempt, self.last_error = 0, None
                self.connected_since = time.monotonic()
                self._set_state("connected")
                reason = await self._wait_until_lost()
                self.connected_since = None
                self.last_error = f"connection lost ({reason})"
                log.info("realtime: connection lost: %s", reason)
            if not await self._back_off():
                return

    async def _back_off(self) -> bool:
        """Wait before the next attempt; False when the attempts are used up."""
        if self.attempt >= self.options.max_attempts:
            message = f"gave up after {self.attempt} attempts: {self.last_error}"
            self.last_error = message
            self._set_state("error", error=message)
            return False
        self.attempt += 1
        delay = reconnect_delay(self.attempt, self.options.interval)
        self._wake.clear()
        self._set_state("reconnecting", delay=delay, error=self.last_error)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)
        self._wake.clear()  # set by a manual retry, which also reset the attempts
        return True

    async def _wait_until_lost(self) -> str:
        assert self._lost is not None
        try:
            return await self._lost
        finally:
            await self._close_client()

    async def _connect(self, session: SocketSession) -> None:
        """One attempt: the preferred namespace, and in ``auto`` mode ``/`` if that is refused."""
        for namespace in self._namespaces_to_try(session.url):
            try:
                await asyncio.wait_for(
                    self._connect_namespace(session, namespace), self.options.connect_timeout
                )
            except TimeoutError:
                await self._close_client()
                raise ConnectFailed(
                    f"no answer within {self.options.connect_timeout:g} s"
                ) from None
            except ConnectFailed as exc:
                await self._close_client()
                if exc.kind != "namespace" or namespace == "/" or self.options.namespace != "auto":
                    raise
                log.info("realtime: namespace %s refused (%s); trying /", namespace, exc.message)
                continue
            self.namespace = namespace
            return

    def _namespaces_to_try(self, url: str) -> list[str]:
        if self.options.namespace != "auto":
            return [self.options.namespace]
        order = [site_namespace(url), "/"]
        if self.namespace in order and self._url == url:
            order.remove(self.namespace)
            order.insert(0, self.namespace)
        return order

    async def _connect_namespace(self, session: SocketSession, namespace: str) -> None:
        import socketio

        self._refusals.clear()
        last: ConnectFailed | None = None
        for transports in (["websocket"], ["polling", "websocket"]):
            lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            client = self._new_client(socketio, lost)
            self._client, self._lost = client, lost
            try:
                await client.connect(
                    session.url,
                    headers={"Cookie": f"sid={session.sid}", "Origin": origin_of(session.url)},
                    auth={"sid": session.sid},
                    transports=transports,
                    namespaces=[namespace],
                    socketio_path="socket.io",
                    wait_timeout=self.options.connect_timeout,
                )
            except socketio.exceptions.ConnectionError as exc:
                await self._close_client()
                last = self._classify(namespace, exc)
                if last.final:
                    raise last from None  # the server answered: another transport won't help
                continue
            return
        assert last is not None
        raise last

    def _classify(self, namespace: str, exc: Exception) -> ConnectFailed:
        refusal = self._refusals.get(namespace)
        if refusal is None or exc.__cause__ is not None:  # no answer, or no Socket.IO answer
            detail = str(exc.__cause__ or exc) or type(exc).__name__
            return ConnectFailed(detail)
        lowered = refusal.lower()
        if any(word in lowered for word in _AUTH_REFUSALS):
            return ConnectFailed(
                f"{NOT_SIGNED_IN}: the realtime server refused the session ({refusal})", "auth")
        if "origin" in lowered:
            return ConnectFailed(f"refused: {refusal}", "origin")
        return ConnectFailed(f"namespace {namespace} refused: {refusal}", "namespace")

    def _new_client(self, socketio: Any, lost: asyncio.Future[str]) -> socketio.AsyncClient:
        client = socketio.AsyncClient(
            reconnection=False, handle_sigint=False, logger=False, engineio_logger=False,
            request_timeout=self.options.connect_timeout,
        )

        def on_connect_error(ns: str, data: Any = None) -> None:
            message = data.get("message") if isinstance(data, dict) else data
            self._refusals[ns] = str(message) if message else "refused"

        def on_disconnect(ns: str, reason: Any = None) -> None:
            if not lost.done():
                lost.set_result(str(reason or "unknown reason"))

        def on_event(event: str, ns: str, *args: Any) -> None:
            self._listener.event_received(event, args[0] if len(args) == 1 else list(args))

        client.on("connect_error", on_connect_error, namespace="*")
        client.on("disconnect", on_disconnect, namespace="*")
        client.on("*", on_event, namespace="*")
        return client

    async def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        with contextlib.suppress(Exception):
            await client.disconnect()
        http = getattr(client.eio, "http", None)  # engineio leaves it open after a failed connect
        if http is not None and not http.closed:
            with contextlib.suppress(Exception):
                await http.close()

    def _set_state(
        self, state: ConnectionState, *, delay: float | None = None, error: str | None = None
    ) -> None:
        previous, self.state = self.state, state
        change = StateChange(
            state=state, previous=previous, attempt=self.attempt,
            max_attempts=self.options.max_attempts, url=self._url, delay=delay, error=error,
        )
        try:
            self._listener.connection_changed(change)
        except Exception:
            log.exception("realtime: the state listener failed")

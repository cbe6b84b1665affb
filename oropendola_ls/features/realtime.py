"""The realtime channel in the editor: connection status everywhere, backend events as LSP.

Every state change of the `RealtimeManager` goes out as ``oropendola/connectionStatus`` and, for
clients that only speak standard LSP, as ``$/progress`` while (re)connecting and as
``window/showMessage`` when it gives up or comes back after a failure. Backend events:
``ai_progress`` goes to the request that owns it, ``msgprint`` becomes ``window/showMessage``,
``eval_js`` is logged and never run, anything else is logged at debug level.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from lsprotocol import types

from oropendola_ls.realtime import (
    NOT_SIGNED_IN,
    RealtimeManager,
    RealtimeOptions,
    SocketSession,
    StateChange,
)
from oropendola_ls.server import OropendolaServer
from oropendola_ls.settings import Settings

from .progress import WorkDone

if TYPE_CHECKING:
    from oropendola_ls.account import Account, SessionState

log = logging.getLogger(__name__)

CONNECTION_STATUS = "oropendola/connectionStatus"
SIGN_IN_HINT = "run `oropendola-ls login` or send `oropendola/signIn`"
RETRY_HINT = "run the command `oropendola.reconnect` to try again"

_INDICATOR_TYPES = {
    "red": types.MessageType.Error,
    "orange": types.MessageType.Warning,
    "yellow": types.MessageType.Warning,
}


def options_from(settings: Settings) -> RealtimeOptions:
    return RealtimeOptions(
        max_attempts=settings.max_reconnect_attempts,
        interval=settings.reconnect_interval / 1000.0,
        namespace=settings.realtime_namespace,
    )


class RealtimeFeature:
    """Owns the manager for the server's account and turns what it reports into LSP."""

    def __init__(self, server: OropendolaServer) -> None:
        self.server = server
        self.manager: RealtimeManager | None = None
        self._account: Account | None = None
        self._progress: WorkDone | None = None
        self._troubled = False  # a failure since the last good connection

    # -- following the account --------------------------------------------------------------

    def attach(self, account: Account) -> None:
        """Start following ``account``: connect now if it holds a session."""
        if self.manager is not None:
            return
        self._account = account
        self.manager = RealtimeManager(self, self._session, options_from(self.server.settings))
        self.server.realtime = self.manager
        account.watchers.append(self._session_changed)
        self.manager.start()

    async def restart(self) -> None:
        """Connect again from scratch (a new session, another URL or namespace)."""
        if self.manager is not None:
            await self.manager.stop()
            self.manager.start()

    async def apply_settings(self, settings: Settings, *, backend_changed: bool) -> None:
        if self.manager is None:
            return
        if self.manager.configure(options_from(settings)) or backend_changed:
            await self.restart()

    async def retry(self) -> None:
        """Manual retry; a session refused earlier is checked over HTTP first."""
        if self.manager is None or self._account is None:
            return
        if self._account.sid is None:
            await self._account.verify()
        await self.manager.retry()

    async def close(self) -> None:
        if self.manager is not None:
            await self.manager.stop()

    def _session(self) -> SocketSession | None:
        account = self._account
        if account is None or account.sid is None:
            return None
        return SocketSession(url=account.config.active_url, sid=account.sid)

    def _session_changed(self, state: SessionState) -> None:
        if self.manager is None:
            return
        if state == "expired":
            manager = self.manager
            live = manager.state in ("connected", "connecting", "reconnecting")
            told = manager.state == "error" and (manager.last_error or "").startswith(
                NOT_SIGNED_IN)
            if not live and not told:
                # No realtime connection will report it (none, or given up): the call that
                # found the session expired is the only sign, and an editor may not show its
                # error; say it once here.
                where = urlsplit(self._account.config.active_url).hostname \
                    if self._account is not None else None
                self.server.tell(
                    f"Oropendola: your session at {where or 'the backend'} has expired. "
                    f"Sign in again ({SIGN_IN_HINT}).", types.MessageType.Warning)
            self.server.run_task(manager.stop(NOT_SIGNED_IN), "realtime-stop")
        elif state == "signed_out":
            self.server.run_task(self.manager.stop(), "realtime-stop")

    # -- RealtimeListener ----------------------------------------------------------------------

    def connection_changed(self, change: StateChange) -> None:
        self.server.protocol.notify(CONNECTION_STATUS, change.to_json())
        host = urlsplit(change.url).hostname if change.url else None
        where = host or "the Oropendola backend"
        if change.state in ("connecting", "reconnecting"):
            if change.state == "connecting":
                message = f"Connecting to {where}"
            else:
                self._troubled = True
                message = (f"Reconnecting to {where} ({change.attempt}/{change.max_attempts})"
                           f" in {change.delay or 0:g} s")
            if self._progress is None or self._progress.ended:
                self._progress = WorkDone(self.server, "Oropendola realtime", message=message)
            else:
                self._progress.report(message)
            return
        if self._progress is not None:
            self._progress.end(f"Connected to {where}" if change.state == "connected"
                               else change.error or "Disconnected")
            self._progress = None
        if change.state == "connected":
            if self._troubled:
                self.server.tell(f"Oropendola: the realtime connection to {where} is back.")
            self._troubled = False
        elif change.state == "error":
            self._report_error(change, where)

    def _report_error(self, change: StateChange, where: str) -> None:
        error = change.error or "unknown error"
        if error.startswith(NOT_SIGNED_IN):
            if change.previous in ("connected", "connecting", "reconnecting"):
                self.server.tell(
                    f"Oropendola: realtime updates from {where} stopped: {error}. "
                    f"Sign in again ({SIGN_IN_HINT}).", types.MessageType.Warning)
                if self._account is not None:
                    self.server.run_task(self._account.verify(), "verify-session")
            return
        self._troubled = True
        self.server.tell(
            f"Oropendola: no realtime connection to {where}: {error}. Chat still works, "
            f"without live progress; {RETRY_HINT}.", types.MessageType.Warning)

    def event_received(self, event: str, data: Any) -> None:
        if event == "ai_progress":
            self.server.progress_router.dispatch(data)
        elif event == "msgprint":
            self._msgprint(data)
        elif event == "eval_js":
            size = len(data) if isinstance(data, str) else 0
            log.warning("ignored an eval_js event from the backend (%d characters): "
                        "backend JavaScript is never run", size)
        else:
            log.debug("realtime event %r ignored", event)

    def _msgprint(self, data: Any) -> None:
        kind = types.MessageType.Info
        if isinstance(data, dict):
            message = data.get("message")
            title = data.get("title")
            kind = _INDICATOR_TYPES.get(str(data.get("indicator", "")).lower(), kind)
            if isinstance(title, str) and title and isinstance(message, str):
                message = f"{title}: {message}"
        else:
            message = data
        if not isinstance(message, str) or not message.strip():
            log.debug("msgprint without a message ignored")
            return
        self.server.tell(f"Oropendola: {message}", kind)


def register(server: OropendolaServer) -> RealtimeFeature:
    feature = RealtimeFeature(server)
    server.realtime_feature = feature
    server.ready_hooks.append(feature.attach)
    return feature

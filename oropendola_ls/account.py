"""Sign-in state for the configured backend: which credentials are held, whether they still work.

`Account` owns the `BackendConfig`, the `BackendClient` and the on-disk `SessionStore`, and is
what the LSP features and the terminal commands call. It knows nothing about LSP.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import attrs

from oropendola_ls.backend.endpoints import BackendConfig
from oropendola_ls.backend.errors import BackendError, NotSignedInError
from oropendola_ls.backend.redact import RedactingFilter
from oropendola_ls.backend.session import Credentials, SessionStore
from oropendola_ls.settings import Settings

if TYPE_CHECKING:
    from oropendola_ls.backend.client import BackendClient
    from oropendola_ls.embedded import EmbeddedBackend

log = logging.getLogger(__name__)

SessionState = Literal["signed_out", "unverified", "verified", "expired"]

# Settings whose change needs a new BackendConfig/BackendClient.
_CONNECTION_SETTINGS = (
    "server_url", "fallback_urls", "profile", "endpoints", "api_request_timeout",
    "api_key", "api_secret",
)


@attrs.define
class SignInResult:
    user: str
    full_name: str | None = None


class Account:
    """The server's one connection to the backend and the credentials it presents.

    The HTTP client (and httpx with it) is created on the first call that needs the network,
    so a server with no session to check stays as light as a bare one.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        store: SessionStore,
        embedded: EmbeddedBackend | None = None,
        redactor: RedactingFilter | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.embedded = embedded
        self.redactor = redactor or RedactingFilter()
        self.config = BackendConfig.create()
        self._state: SessionState = "signed_out"
        self.last_error: str | None = None
        self.watchers: list[Callable[[SessionState], None]] = []
        """Called with the new state whenever the session state changes."""
        self._client: BackendClient | None = None
        self._credentials: Credentials | None = None  # held until the client exists

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Adopt the current settings and load the credentials to present (no network)."""
        if self.embedded is not None:
            url, user, password = await self.embedded.wait_ready()
            self.config = BackendConfig.create(url)
            await self.sign_in_password(user, password, remember=False)
            return
        self.config = BackendConfig.create(
            self.settings.server_url,
            self.settings.fallback_urls,
            self.settings.profile,
            self.settings.endpoints,
        )
        self._credentials = self._initial_credentials()
        self.state = "unverified" if _holds(self._credentials) else "signed_out"

    async def apply_settings(self, settings: Settings) -> bool:
        """Adopt new settings; rebuild the connection when a connection setting changed."""
        old, self.settings = self.settings, settings
        changed = any(getattr(old, n) != getattr(settings, n) for n in _CONNECTION_SETTINGS)
        if changed and self.embedded is None:
            await self.aclose()
            await self.start()
        return changed

    async def aclose(self) -> None:
        if self._client is not None:
            self._credentials = self._client.credentials
            await self._client.aclose()
            self._client = None

    @property
    def state(self) -> SessionState:
        return self._state

    @state.setter
    def state(self, value: SessionState) -> None:
        changed, self._state = value != self._state, value
        if changed:
            for watcher in list(self.watchers):
                watcher(value)

    @property
    def sid(self) -> str | None:
        """The Frappe session id, while the session is believed to work."""
        credentials = self.credentials
        if credentials is None or self.state not in ("verified", "unverified"):
            return None
        return credentials.sid

    @property
    def credentials(self) -> Credentials | None:
        return self._client.credentials if self._client is not None else self._credentials

    # -- sign-in ---------------------------------------------------------------------------

    async def verify(self) -> SessionState:
        """Ask the backend whether the held credentials still work; never raises."""
        if not _holds(self.credentials):
            self.state = "signed_out"
            return self.state
        client = self.client()
        try:
            user = await client.verify_session()
        except NotSignedInError as exc:
            self.state, self.last_error = "expired", exc.message
            client.credentials = None
        except BackendError as exc:
            self.state, self.last_error = "unverified", exc.message
        else:
            self.state, self.last_error = "verified", None
            if client.credentials is not None:
                client.credentials.user = user
        return self.state

    async def sign_in_password(
        self, username: str, password: str, *, remember: bool = True
    ) -> SignInResult:
        credentials = await self.client().login(username, password)
        self._adopt(credentials, remember=remember)
        return SignInResult(credentials.user or username, credentials.full_name)

    async def sign_in_api_key(self, api_key: str, api_secret: str) -> SignInResult:
        self.redactor.add(api_secret)
        credentials = await self.client().use_api_key(api_key, api_secret)
        self._adopt(credentials, remember=self.embedded is None)
        return SignInResult(credentials.user or api_key, credentials.full_name)

    async def sign_out(self) -> None:
        if _holds(self.credentials):
            await self.client().logout()
        self._credentials = None
        if self.embedded is None:
            self.store.delete(self.config.primary_url)
        self.state, self.last_error = "signed_out", None

    # -- calls -----------------------------------------------------------------------------

    async def call(self, name: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call a backend endpoint; a refused session marks the account expired."""
        client = self.client()
        try:
            result = await client.call(name, params)
        except NotSignedInError as exc:
            if _holds(client.credentials):
                self.state, self.last_error = "expired", exc.message
            raise
        except BackendError as exc:
            self.last_error = exc.message
            raise
        return result

    async def stream(self, name: str, params: Mapping[str, Any] | None = None
                     ) -> AsyncIterator[Any]:
        """`BackendClient.stream` with the same bookkeeping as `call`."""
        client = self.client()
        try:
            async for event in client.stream(name, params):
                yield event
        except NotSignedInError as exc:
            if _holds(client.credentials):
                self.state, self.last_error = "expired", exc.message
            raise

    async def recheck_primary(self) -> None:
        """While on a fallback URL, check the primary now and move back if it answers."""
        if self._client is not None and self.config.on_fallback:
            await self._client.recheck_primary()

    def status(self) -> dict[str, Any]:
        config, credentials = self.config, self.credentials
        signed_in = _holds(credentials) and self.state in ("verified", "unverified")
        result: dict[str, Any] = {
            "signedIn": signed_in,
            "session": self.state,
            "backend": {
                "url": config.active_url,
                "environment": config.environment,
                "profile": config.profile,
                "primaryUrl": config.primary_url,
                "onFallback": config.on_fallback,
                "embedded": self.embedded is not None,
            },
        }
        if signed_in and credentials is not None and credentials.user:
            result["user"] = credentials.user
            if credentials.full_name:
                result["fullName"] = credentials.full_name
        if self.last_error:
            result["lastError"] = self.last_error
        return result

    # -- internals -------------------------------------------------------------------------

    def client(self) -> BackendClient:
        """The HTTP client, created (and httpx imported) on first use."""
        if self._client is None:
            from oropendola_ls.backend.client import BackendClient

            self._client = BackendClient(
                self.config, credentials=self._credentials,
                timeout=self.settings.api_request_timeout,
            )
        return self._client

    def _initial_credentials(self) -> Credentials | None:
        if self.settings.api_key and self.settings.api_secret:
            self.redactor.add(self.settings.api_secret)
            return Credentials(api_key=self.settings.api_key, api_secret=self.settings.api_secret)
        stored = self.store.load(self.config.primary_url)
        if stored is not None:
            for secret in stored.secret_values:
                self.redactor.add(secret)
        return stored

    def _adopt(self, credentials: Credentials, *, remember: bool) -> None:
        for secret in credentials.secret_values:
            self.redactor.add(secret)
        self.state, self.last_error = "verified", None
        if remember:
            self.store.save(self.config.primary_url, credentials)


def _holds(credentials: Credentials | None) -> bool:
    return credentials is not None and credentials.has_any

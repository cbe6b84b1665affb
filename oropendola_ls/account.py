"""Sign-in state for the configured backend: which credentials are held, whether they still work.

`Account` owns the `BackendConfig`, the `BackendClient` and the on-disk `SessionStore`, and is
what the LSP features and the terminal commands call. It knows nothing about LSP.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import attrs

from oropendola_ls.backend.endpoints import BackendConfig, ProfileName
from oropendola_ls.backend.errors import (
    BackendError,
    BackendUnavailableError,
    BadResponseError,
    EndpointUnsupportedError,
    NotSignedInError,
    SignInExpiredError,
)
from oropendola_ls.backend.redact import RedactingFilter
from oropendola_ls.backend.session import Credentials, SessionStore, SessionStoreError
from oropendola_ls.settings import Settings

if TYPE_CHECKING:
    from oropendola_ls.backend.client import BackendClient, BrowserSignIn
    from oropendola_ls.embedded import EmbeddedBackend

log = logging.getLogger(__name__)

SessionState = Literal["signed_out", "unverified", "verified", "expired"]

PUBLISHED: ProfileName = "oropendola_ai"
SIGN_IN_TIMEOUT = 300.0
"""Seconds a browser sign-in waits for the user at most (the app's five minutes)."""
SIGN_IN_GRACE = 10.0
"""Seconds past the request's own ``expires_in`` before the wait gives up without an answer."""
MAX_POLL_FAILURES = 5
"""Consecutive failed status checks (network, garbage) that end a browser sign-in."""
DETAILS_TTL = 60.0
"""Seconds the plan and profile shown by status are reused."""
DETAILS_TIMEOUT = 5.0
"""Seconds status waits for the plan or profile before reporting what it has."""

ShowSignInPage = Callable[["BrowserSignIn"], Awaitable[None] | None]
"""Shows the user the page where the browser sign-in is completed."""

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
        self.notices: list[Callable[[str], None]] = []
        """Told what the user should know though the call succeeded (a session that could not
        be stored). Without any, such a failure raises `SessionStoreError`."""
        self._client: BackendClient | None = None
        self._credentials: Credentials | None = None  # held until the client exists
        self.profile_detected = False
        """True once the backend's profile was found out (``profile`` setting ``auto``)."""
        self.profile_reason: str | None = None
        self._details: tuple[float, Credentials, dict[str, Any]] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Adopt the current settings and load the credentials to present (no network)."""
        if self.embedded is not None:
            url, user, password = await self.embedded.wait_ready()
            self.config = BackendConfig.create(url)
            await self.sign_in_password(user, password, remember=False)
            return
        auto = self.settings.profile == "auto"
        self.config = BackendConfig.create(
            self.settings.server_url,
            self.settings.fallback_urls,
            "oropendola" if auto else self.settings.profile,
            self.settings.endpoints,
        )
        self.profile_detected, self.profile_reason, self._details = False, None, None
        self._credentials = self._initial_credentials()
        if auto and self._credentials is not None and self._credentials.token_only:
            self._choose_profile(PUBLISHED, "the stored sign-in is a browser access token, "
                                 "which only the published Oropendola app issues")
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
        await self.detect_profile()
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
        await self.detect_profile()
        return SignInResult(credentials.user or username, credentials.full_name)

    async def sign_in_api_key(self, api_key: str, api_secret: str) -> SignInResult:
        self.redactor.add(api_secret)
        credentials = await self.client().use_api_key(api_key, api_secret)
        self._adopt(credentials, remember=self.embedded is None)
        await self.detect_profile()
        return SignInResult(credentials.user or api_key, credentials.full_name)

    async def sign_in_browser(
        self, show: ShowSignInPage, *, longest: float = SIGN_IN_TIMEOUT
    ) -> SignInResult:
        """The browser sign-in (protocol.md §5.1 item 1): start a sign-in request, let ``show``
        tell the user its page, then poll until the user completed it there.

        Ends with `SignInExpiredError` when the request expires or ``longest`` seconds pass.
        Cancelling the calling task stops the polling. The access and refresh tokens go to the
        session store and the log redactor, nowhere else.
        """
        client = self.client()
        from oropendola_ls.backend.client import BROWSER_CHECK, BROWSER_INITIATE

        if client.resolve(BROWSER_INITIATE) is None or client.resolve(BROWSER_CHECK) is None:
            raise EndpointUnsupportedError(
                f"Browser sign-in is a feature of the published Oropendola app, and the "
                f"{self.config.profile} profile has no endpoints for it: set the `profile` "
                "setting to `auto` or `oropendola_ai`, or sign in with a password")
        request = await client.start_browser_sign_in()
        log.info("Browser sign-in started at %s; waiting for it to be completed",
                 client.config.active_url)
        shown = show(request)
        if inspect.isawaitable(shown):
            await shown
        loop = asyncio.get_running_loop()
        wait = min(longest, request.expires_in + SIGN_IN_GRACE)
        deadline = loop.time() + wait
        failures = 0
        while True:
            await asyncio.sleep(min(request.poll_interval, max(0.0, deadline - loop.time())))
            try:
                poll = await client.check_browser_sign_in(request.request_id)
            except (BackendUnavailableError, BadResponseError) as exc:
                failures += 1
                if failures >= MAX_POLL_FAILURES:
                    raise
                log.info("Checking the browser sign-in failed (%s); trying again", exc.message)
            else:
                failures = 0
                if poll.state == "completed" and poll.credentials is not None:
                    credentials = poll.credentials
                    break
                if poll.state == "expired":
                    detail = f" ({poll.message})" if poll.message else ""
                    raise SignInExpiredError(
                        f"The browser sign-in request expired before it was completed{detail}:"
                        " sign in again")
            if loop.time() >= deadline:
                minutes = f"{wait / 60:g} minutes" if wait >= 60 else f"{wait:g} s"
                raise SignInExpiredError(
                    f"The browser sign-in was not completed within {minutes}: sign in again")
        for secret in credentials.secret_values:
            self.redactor.add(secret)
        previous, client.credentials = client.credentials, credentials
        await self.detect_profile()
        if credentials.user is None:
            try:
                credentials.user = await client.verify_session()
            except BaseException:
                client.credentials = previous
                raise
        self._adopt(credentials, remember=self.embedded is None)
        log.info("Signed in to %s as %s with the browser", client.config.active_url,
                 credentials.user)
        return SignInResult(credentials.user, credentials.full_name)

    async def detect_profile(self) -> None:
        """With the ``profile`` setting ``auto``, find out once which names the backend answers:
        ``ping``, then the seed's ``verify_session`` (417 "Failed to get method" means the
        published app). Never raises; an inconclusive probe is tried again next time."""
        if self.settings.profile != "auto" or self.profile_detected:
            return
        credentials = self.credentials
        if credentials is not None and credentials.token_only:
            self._choose_profile(PUBLISHED, "signed in with a browser access token, which only "
                                 "the published Oropendola app issues")
            return
        try:
            profile, reason = await self.client().probe_seed_names()
        except (BackendError, OSError) as exc:
            profile, reason = None, getattr(exc, "message", None) or str(exc)
        if profile is None:
            log.info("Backend profile not detected yet (%s); using the %s names for now",
                     reason, self.config.profile)
            return
        self._choose_profile(profile, reason)

    async def sign_out(self) -> None:
        if _holds(self.credentials):
            await self.client().logout()
        self._credentials = None
        self._details = None
        self.state, self.last_error = "signed_out", None
        if self.embedded is None:
            self._store_change(lambda: self.store.delete(self.config.primary_url),
                               "the stored session stays there until you sign in again")

    # -- calls -----------------------------------------------------------------------------

    async def call(self, name: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call a backend endpoint; a refused session marks the account expired."""
        client = self.client()
        try:
            result = await client.call(name, params)
        except NotSignedInError as exc:
            if _refuses_sign_in(client.credentials, exc):
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
            if _refuses_sign_in(client.credentials, exc):
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
                "profileDetected": self.profile_detected,
                "profileSetting": self.settings.profile,
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

    async def details(self) -> dict[str, Any]:
        """The plan (``subscription``) and, for a token sign-in, the backend's ``profile`` of
        the user, for status. Reused for `DETAILS_TTL` seconds; never raises: what could not
        be read is ``{"error": ...}``."""
        credentials = self.credentials
        if not _holds(credentials) or self.state not in ("verified", "unverified"):
            return {}
        assert credentials is not None
        now = time.monotonic()
        cached = self._details
        if cached is not None and cached[1] is credentials and now - cached[0] < DETAILS_TTL:
            return dict(cached[2])
        token = bool(credentials.access_token)
        plan_name = ("subscription.get_info" if not token and self.config.profile == PUBLISHED
                     else "subscription.check")
        wanted = {"subscription": (plan_name, _plan)}
        if token:
            wanted["profile"] = ("user.get_info", _profile)
        answers = await asyncio.gather(*(self._detail(name) for name, _ in wanted.values()))
        result: dict[str, Any] = {}
        complete = True
        for (key, (_, read)), answer in zip(wanted.items(), answers, strict=True):
            if isinstance(answer, _DetailMissing):
                result[key], complete = {"error": answer.message}, False
            else:
                result[key] = read(answer)
        if complete:
            self._details = (now, credentials, result)
        return dict(result)

    async def _detail(self, name: str) -> Any:
        """The answer of ``name``, or a `_DetailMissing` saying why there is none."""
        last_error = self.last_error
        try:
            return await asyncio.wait_for(self.call(name), DETAILS_TIMEOUT)
        except BackendError as exc:
            return _DetailMissing(exc.message)
        except TimeoutError:
            return _DetailMissing(
                f"the backend did not answer {name} within {DETAILS_TIMEOUT:g} s")
        finally:
            if self.state != "expired":
                self.last_error = last_error

    # -- internals -------------------------------------------------------------------------

    def client(self) -> BackendClient:
        """The HTTP client, created (and httpx imported) on first use."""
        if self._client is None:
            from oropendola_ls.backend.client import BackendClient

            self._client = BackendClient(
                self.config, credentials=self._credentials,
                timeout=self.settings.api_request_timeout,
            )
            self._client.published_fallback = self.settings.profile == "auto"
            self._client.on_credentials_changed = self._credentials_changed
        return self._client

    def _choose_profile(self, profile: ProfileName, reason: str) -> None:
        self.profile_detected, self.profile_reason = True, reason
        if self._client is not None:
            self._client.use_profile(profile)
        else:
            self.config.profile = profile
        log.info("Backend profile: %s, detected because %s", profile, reason)

    def _credentials_changed(self, credentials: Credentials) -> None:
        """A refreshed access token: redact it and store it for the next start."""
        for secret in credentials.secret_values:
            self.redactor.add(secret)
        if self.embedded is None and credentials is self.credentials:
            self._store_change(lambda: self.store.save(self.config.primary_url, credentials),
                               _NOT_REMEMBERED)

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
        self._details = None
        self.state, self.last_error = "verified", None
        if remember:
            self._store_change(lambda: self.store.save(self.config.primary_url, credentials),
                               _NOT_REMEMBERED)

    def _store_change(self, change: Callable[[], object], consequence: str) -> None:
        """Save to or delete from the session store; a store that cannot be written is told to
        `notices` (the sign-in itself worked), or raised when nobody listens."""
        try:
            change()
        except SessionStoreError as exc:
            if not self.notices:
                raise
            message = f"{exc}; {consequence}"
            log.warning("%s", message)
            for notice in list(self.notices):
                notice(message)


_NOT_REMEMBERED = ("you are signed in until oropendola-ls stops, then you must sign in again")


def _holds(credentials: Credentials | None) -> bool:
    return credentials is not None and credentials.has_any


def _refuses_sign_in(credentials: Credentials | None, error: NotSignedInError) -> bool:
    """Whether ``error`` means the held sign-in no longer works. A token-only sign-in ends only
    when its token is refused: other methods do not take it (they are not for token users)."""
    if not _holds(credentials):
        return False
    assert credentials is not None
    return error.token_refused or not credentials.token_only


def with_details(status: dict[str, Any], details: Mapping[str, Any]) -> dict[str, Any]:
    """``status`` plus `Account.details`: the plan (``subscription``) and the backend's
    ``profile`` of the user, whose email and name replace the stored ones."""
    if not status.get("signedIn"):
        return status
    status.update(details)
    profile = details.get("profile")
    if isinstance(profile, Mapping) and isinstance(profile.get("email"), str):
        status["user"] = profile["email"]
        if isinstance(profile.get("fullName"), str):
            status["fullName"] = profile["fullName"]
    return status


@attrs.frozen
class _DetailMissing:
    """Why a detail of status could not be read."""

    message: str


def _plan(value: Any) -> dict[str, Any]:
    """The plan from ``get_subscription_status`` (§2.9) or ``user_api.get_my_subscription``."""
    subscription = value.get("subscription") if isinstance(value, Mapping) else None
    if not isinstance(subscription, Mapping):
        message = value.get("message") if isinstance(value, Mapping) else None
        return {"plan": None, "status": "none",
                "message": message if isinstance(message, str) and message
                else "No active subscription found"}
    plan = next((subscription[k] for k in ("plan_name", "plan_title", "plan", "plan_id")
                 if isinstance(subscription.get(k), str) and subscription[k]), None)
    result: dict[str, Any] = {"plan": plan, "status": subscription.get("status")}
    for key, wire in (("plan_type", "planType"), ("is_active", "isActive"),
                      ("is_trial", "isTrial"), ("days_remaining", "daysRemaining"),
                      ("end_date", "endDate")):
        if subscription.get(key) is not None:
            result[wire] = subscription[key]
    quota = subscription.get("quota")
    daily = subscription.get("daily_quota")
    if isinstance(quota, Mapping):
        result["dailyLimit"] = quota.get("daily_limit")
        result["dailyRemaining"] = quota.get("daily_remaining")
    elif isinstance(daily, Mapping):
        result["dailyLimit"] = daily.get("limit")
        result["dailyRemaining"] = daily.get("remaining")
    return result


def _profile(value: Any) -> dict[str, Any]:
    """The user from ``get_my_profile`` (§2.7)."""
    profile = value.get("profile") if isinstance(value, Mapping) else None
    if not isinstance(profile, Mapping):
        return {"error": "the backend's profile answer has no profile"}
    result: dict[str, Any] = {"email": profile.get("email")}
    if isinstance(profile.get("full_name"), str) and profile["full_name"]:
        result["fullName"] = profile["full_name"]
    return result

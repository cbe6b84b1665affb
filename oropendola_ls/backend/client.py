"""`BackendClient`: calls the Oropendola (Frappe) backend over HTTP and turns every answer into a
value or a `BackendError` a person can act on.

What it does for each call (protocol.md §1, §5, §7):

- looks the logical name up in `BackendConfig` (method path, verb, auth kind); GET sends the
  parameters in the query string, POST as a JSON body, or as multipart form data when an
  `Upload` is among them;
- sends credentials explicitly (``Cookie: sid=``, ``Authorization: token key:secret``,
  ``X-Frappe-CSRF-Token``); the httpx cookie jar is disabled, so nothing leaks across backends;
- unwraps Frappe's ``{"message": ...}`` envelope and maps the error shapes (error envelope with
  ``_server_messages``, ``session_expired``, in-band ``success: false`` / ``status >= 400`` /
  ``error`` at HTTP 200, 417 "Failed to get method") onto the classes of `errors`;
- retries 429 (honouring ``Retry-After``, for every call), network errors and 5xx with
  exponential backoff and full jitter; a non-idempotent call is retried only when the request
  was never sent, and no call after ``apiRequestTimeout`` ran out waiting for the answer;
- fails over to the first healthy fallback URL when the active one cannot be reached, and moves
  back to the primary once its health check passes again.

No secret (session id, API secret, password) is ever logged or put in an exception message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import random
import re
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType
from typing import Any, Literal
from urllib.parse import unquote, urljoin, urlsplit

import attrs
import httpx

from oropendola_ls import __version__
from oropendola_ls.backend.endpoints import (
    LOGICAL_NAMES,
    PROFILES,
    BackendConfig,
    Endpoint,
    ProfileName,
    is_loopback_host,
    normalize_base_url,
)
from oropendola_ls.backend.envelope import (
    FRAPPE_EXTRA_KEYS,
    METHOD_MISSING_MARK,
    error_text,
    in_band_failure,
    json_object,
    parse_retry_after,
    set_cookies,
    text_of,
)
from oropendola_ls.backend.errors import (
    BackendError,
    BackendRequestError,
    BackendUnavailableError,
    BadResponseError,
    EndpointUnsupportedError,
    InvalidCredentialsError,
    NotSignedInError,
    RateLimitedError,
    SessionExpiredError,
    SignInAgainError,
    in_band_error,
)
from oropendola_ls.backend.redact import RedactingFilter, redact
from oropendola_ls.backend.session import Credentials

log = logging.getLogger(__name__)

USER_AGENT = f"oropendola-ls/{__version__}"
HEALTH_TIMEOUT = 5.0
CONNECT_TIMEOUT = 10.0
MAX_BACKOFF = 30.0
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
"""Largest backend answer read (after decoding); a larger one is refused, not downloaded."""

AuthErrorFactory = Callable[[int | None, str], BackendError]
"""Builds the error for a 401/403 (HTTP or in-band) from the status and the backend's text."""

PUBLISHED: ProfileName = "oropendola_ai"
"""The profile of the published app: the only one with the browser sign-in (protocol.md §5.1)."""
BROWSER_INITIATE = "auth.initiate_browser"
BROWSER_CHECK = "auth.check_browser"
REFRESH_ENDPOINT = "auth.refresh_token"
REVOKE_ENDPOINT = "auth.logout_token"
WHOAMI_ENDPOINT = "user.get_info"
"""The published app has no "who am I" for a token: its profile answer is the check (§2.3)."""
MIN_POLL_INTERVAL = 0.05
MAX_POLL_INTERVAL = 30.0
DEFAULT_POLL_INTERVAL = 2.0
DEFAULT_SIGN_IN_LIFETIME = 300.0

_rng = random.SystemRandom()

# httpcore writes response headers (Set-Cookie: sid=...) to its DEBUG log and httpx the request
# URL (with its query string) to its INFO log: mask credentials at the source.
_LIBRARY_LOG_FILTER = RedactingFilter(mask_headers=True)
for _name in ("httpx", "httpcore.http11", "httpcore.http2", "httpcore.proxy",
              "httpcore.connection", "httpcore.socks"):
    _logger = logging.getLogger(_name)
    if _LIBRARY_LOG_FILTER not in _logger.filters:
        _logger.addFilter(_LIBRARY_LOG_FILTER)


@attrs.frozen
class Upload:
    """A file among a POST call's params: the call is then sent as multipart form data.

    Each `Upload` becomes a file part named after its param; the other params become form
    fields (strings as they are, anything else JSON-encoded; None left out).
    """

    filename: str
    data: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")
    content_type: str = "application/octet-stream"


@attrs.frozen
class BrowserSignIn:
    """A started browser sign-in (``initiate_auth``): the page to open, and how to wait."""

    request_id: str
    login_url: str
    expires_in: float
    poll_interval: float


@attrs.frozen
class BrowserPoll:
    """One ``check_auth_status`` answer: still pending, expired, or completed with credentials."""

    state: Literal["pending", "expired", "completed"]
    credentials: Credentials | None = None
    message: str = ""


def takes_api_key(endpoint: Endpoint) -> bool:
    """The published app's ``vscode_extension.*`` AI methods read the key from ``api_key``
    (the access token works there, protocol.md §5.2), never from a header."""
    return ".api.vscode_extension." in f".{endpoint.method}"


def _seconds_value(value: object, default: float, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return default
    return min(high, max(low, float(value)))


class _MethodMissing(Exception):
    """HTTP 417 "Failed to get method": the backend has no such method (internal signal)."""


def _trust_store_error(exc: ssl.SSLError | OSError) -> BackendUnavailableError:
    """The error for trusted certificates that cannot be loaded: httpx reads them from
    ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set. Verification is never turned off for it."""
    named = ", ".join(f"{name}={os.environ[name]}" for name in ("SSL_CERT_FILE", "SSL_CERT_DIR")
                      if os.environ.get(name))
    reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
    return BackendUnavailableError(
        f"Cannot load the certificates to trust for TLS ({named or 'the default CA bundle'}): "
        f"{reason}. TLS verification stays on: point SSL_CERT_FILE at a PEM file of CA "
        "certificates, or unset it.")


def _no_cookie_jar() -> CookieJar:
    """A cookie jar that never stores nor sends a cookie: credentials are sent explicitly."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def _host(base_url: str) -> str:
    return urlsplit(base_url).netloc


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it was raised from, including exception-group members."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        stack.extend((item.__cause__, item.__context__))
        if isinstance(item, BaseExceptionGroup):
            stack.extend(item.exceptions)


def _scrub(exc: BackendError, secrets: list[str | None]) -> None:
    clean = redact(exc.message, secrets)
    if clean != exc.message:
        exc.message = clean
        exc.args = (clean,)


class BackendClient:
    """HTTP client of one Oropendola backend (with its fallback URLs). See the module docstring."""

    def __init__(
        self,
        config: BackendConfig,
        *,
        credentials: Credentials | None = None,
        timeout: float = 600.0,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        max_retry_after: float = 60.0,
        primary_recheck_interval: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.config = config
        self.credentials = credentials
        self.timeout = float(timeout)
        self.max_retries = max(0, max_retries)
        self.backoff_base = max(0.0, backoff_base)
        self.max_retry_after = max_retry_after
        self.primary_recheck_interval = primary_recheck_interval
        self._connect_timeout = min(CONNECT_TIMEOUT, self.timeout)
        self._health_timeout = min(HEALTH_TIMEOUT, self.timeout)
        try:
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout, connect=self._connect_timeout),
                verify=True,
                follow_redirects=False,
                http1=True,
                http2=False,
                transport=transport,
                cookies=_no_cookie_jar(),
                headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            )
        except (ssl.SSLError, OSError) as exc:  # SSL_CERT_FILE naming no usable certificate
            raise _trust_store_error(exc) from exc
        self._unsupported: dict[str, str] = {}
        self._failover_lock = asyncio.Lock()
        self._refresh_lock = asyncio.Lock()
        self._last_primary_check = time.monotonic()
        self._rate_limited_until = 0.0
        """`time.monotonic` before which no request is sent: a 429's ``Retry-After`` holds for
        every call to the backend, not only for the one that got it (no burst into a limiter)."""
        self.published_fallback = False
        """Resolve names the profile lacks (the browser sign-in's) to the published app's."""
        self.on_credentials_changed: Callable[[Credentials], None] | None = None
        """Called after a token refresh changed the held credentials (to store them)."""

    def __repr__(self) -> str:
        return (
            f"BackendClient(active_url={self.config.active_url!r}, "
            f"credentials={self.credentials!r})"
        )

    async def __aenter__(self) -> BackendClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- public calls ------------------------------------------------------------------------

    async def call(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotent: bool | None = None,
    ) -> Any:
        """Call logical endpoint ``name`` and return the unwrapped ``message`` value.

        ``idempotent`` (default: the verb is GET) allows retries after the request may have
        been sent. Raises a `BackendError` subclass on any failure.
        """
        with self._scrubbing():
            return await self._call_refreshing(name, params, idempotent)

    async def stream(self, name: str, params: Mapping[str, Any] | None = None
                     ) -> AsyncIterator[Any]:
        """Call logical endpoint ``name`` that answers Server-Sent Events; yield each event.

        Each ``data:`` line is one JSON event (``[DONE]`` ends the stream). A backend that
        answers with a JSON envelope instead (an error, or no such method) raises as `call`
        would; 417 "Failed to get method" raises `EndpointUnsupportedError` and is remembered.
        Never retried: the request may have started an answer. Closing the iterator (or
        cancelling its consumer) closes the connection.
        """
        known = self._unsupported.get(name)
        if known is not None:
            raise EndpointUnsupportedError(known, status=417)
        endpoint = self.resolve(name)
        if endpoint is None:
            raise EndpointUnsupportedError(
                f"The {self.config.profile} profile has no method for {name}")
        with self._scrubbing():
            await self._wait_for_rate_limit(name, self.config.active_url)
            headers = self._auth_headers(endpoint, self.credentials)
            params = self._with_api_key(endpoint, params, self.credentials)
            base = self.config.active_url
            url = self.config.url_for(endpoint, base)
            request = self._http.build_request(
                "GET" if endpoint.verb == "GET" else "POST", url, headers=headers,
                **({"params": {k: v if isinstance(v, str) else json.dumps(v)
                               for k, v in (params or {}).items() if v is not None}}
                   if endpoint.verb == "GET" else {"json": dict(params or {})}))
            started = time.monotonic()
            try:
                response = await self._http.send(request, stream=True)
            except httpx.RequestError as exc:
                self._log_request(name, endpoint, base, type(exc).__name__, started)
                raise self._unavailable(base, exc, [base]) from exc
            self._log_request(name, endpoint, base, str(response.status_code), started)
        try:
            content_type = response.headers.get("Content-Type", "")
            if response.status_code != 200 or not content_type.startswith("text/event-stream"):
                await self._read_capped(response)
                with self._scrubbing():
                    try:
                        value = self._interpret(name, endpoint, base, response, bool(headers),
                                                None)
                    except _MethodMissing:
                        message = (f"The backend at {_host(base)} has no {endpoint.method} "
                                   f"for {name}")
                        self._unsupported[name] = message
                        raise EndpointUnsupportedError(message, status=417) from None
                yield {"type": "envelope", "message": value}
                return
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    return
                try:
                    yield json.loads(payload)
                except ValueError:
                    log.debug("%s: an event that is not JSON was skipped", name)
        except httpx.RequestError as exc:
            raise self._unavailable(base, exc, [base]) from exc
        finally:
            await response.aclose()

    async def login(self, username: str, password: str) -> Credentials:
        """Sign in with email and password; keep and return the new session credentials."""
        with self._scrubbing(password):
            host = _host(self.config.active_url)

            def wrong_password(status: int | None, text: str) -> BackendError:
                detail = f": {text}" if text else ""
                return InvalidCredentialsError(
                    f"Wrong email or password for {host}{detail}", status=status
                )

            response, value = await self._call(
                "auth.login", {"usr": username, "pwd": password}, False, None,
                auth_error=wrong_password,
            )
            cookies = set_cookies(response)
            sid = cookies.get("sid")
            if not sid or sid == "Guest":
                if value == "Password Reset":
                    raise InvalidCredentialsError(
                        f"The password of {username} on {host} has expired: reset it in a "
                        "browser, then sign in again",
                        status=response.status_code,
                    )
                raise BadResponseError(
                    f"{host} accepted the sign-in but sent no session cookie (sid); two-factor "
                    "sign-in is not supported here: use an API key and secret instead",
                    status=response.status_code,
                )
            body = json_object(response) or {}
            full_name = body.get("full_name")
            if not isinstance(full_name, str) or not full_name:
                full_name = unquote(cookies.get("full_name", "")) or None
            user_id = unquote(cookies.get("user_id", ""))
            user = user_id if user_id and user_id != "Guest" else username
            self.credentials = Credentials(user=user, full_name=full_name, sid=sid)
            log.info("Signed in to %s as %s", host, user)
            return self.credentials

    async def use_api_key(self, api_key: str, api_secret: str) -> Credentials:
        """Verify an API key pair; keep it on success. The previous credentials stay otherwise."""
        with self._scrubbing(api_secret):
            host = _host(self.config.active_url)

            def refused(status: int | None, text: str) -> BackendError:
                detail = f": {text}" if text else ""
                return InvalidCredentialsError(
                    f"The API key and secret were refused by {host}{detail}", status=status
                )

            trial = Credentials(api_key=api_key, api_secret=api_secret)
            trial.user = await self._verify(trial, refused)
            self.credentials = trial
            log.info("Signed in to %s as %s with an API key", host, trial.user)
            return trial

    async def verify_session(self) -> str:
        """The user the backend sees for the held credentials; `NotSignedInError` if none."""
        credentials = self.credentials
        if credentials is None or not credentials.has_any:
            raise NotSignedInError()
        with self._scrubbing():
            if credentials.token_only:
                return await self._verify_token(credentials)
            return await self._verify(credentials, None)

    async def logout(self) -> None:
        """End the backend session or revoke the access token (best effort), and forget the
        credentials."""
        credentials = self.credentials
        ends = [REVOKE_ENDPOINT] if credentials is not None and credentials.access_token else []
        if credentials is not None and credentials.sid:
            ends.append("auth.logout")
        for name in ends:
            try:
                await self._call(name, None, False, credentials)
            except BackendError as exc:
                _scrub(exc, self._secrets())
                log.info("Sign-out request failed (%s); the local session is cleared anyway",
                         exc.message)
        self.credentials = None

    # -- browser sign-in and tokens (protocol.md §5.1 item 1) --------------------------------

    def resolve(self, name: str) -> Endpoint | None:
        """The endpoint for ``name``: the profile's (or override), else, with
        `published_fallback`, the published app's."""
        endpoint = self.config.endpoint(name)
        if endpoint is None and self.published_fallback:
            endpoint = PROFILES[PUBLISHED].get(name)
        return endpoint

    async def start_browser_sign_in(self) -> BrowserSignIn:
        """``initiate_auth``: a new sign-in request and the page where the user completes it."""
        with self._scrubbing():
            _, value = await self._call(BROWSER_INITIATE, None, None, None)
            if not isinstance(value, Mapping):
                raise BadResponseError("The backend's answer to the browser sign-in has no "
                                       "sign-in request")
            request_id, url = value.get("auth_request_id"), value.get("login_url")
            if not isinstance(request_id, str) or not request_id or not isinstance(url, str):
                raise BadResponseError("The backend's answer to the browser sign-in has no "
                                       "auth_request_id or login_url")
            return BrowserSignIn(
                request_id=request_id,
                login_url=self._login_url(url),
                expires_in=_seconds_value(value.get("expires_in"), DEFAULT_SIGN_IN_LIFETIME,
                                          1.0, 86400.0),
                poll_interval=_seconds_value(value.get("poll_interval"), DEFAULT_POLL_INTERVAL,
                                             MIN_POLL_INTERVAL, MAX_POLL_INTERVAL),
            )

    async def check_browser_sign_in(self, request_id: str) -> BrowserPoll:
        """``check_auth_status`` once. Completed gives new credentials (not yet held)."""
        with self._scrubbing():
            _, value = await self._call(BROWSER_CHECK, {"auth_request_id": request_id}, True,
                                        None, check_in_band=False)
            if not isinstance(value, Mapping):
                raise BadResponseError("The backend's sign-in status answer is not an object")
            state = value.get("status")
            text = text_of(value) or ""
            if state == "completed" and value.get("success") is not False:
                access, refresh = value.get("access_token"), value.get("refresh_token")
                user = value.get("user")
                email = user.get("email") if isinstance(user, Mapping) else None
                full_name = user.get("full_name") if isinstance(user, Mapping) else None
                if not isinstance(access, str) or not access:
                    raise BadResponseError("The backend completed the browser sign-in without "
                                           "an access token")
                credentials = Credentials(
                    user=email if isinstance(email, str) and email else None,
                    full_name=full_name if isinstance(full_name, str) and full_name else None,
                    access_token=access,
                    refresh_token=refresh if isinstance(refresh, str) and refresh else None,
                )
                return BrowserPoll("completed", credentials)
            if state == "expired":
                return BrowserPoll("expired", message=text)
            if state == "pending" and value.get("success") is not False:
                return BrowserPoll("pending", message=text)
            raise BackendRequestError(
                f"The browser sign-in failed: {text or 'the backend gave no reason'}")

    async def refresh_access_token(self, refused: str | None = None) -> bool:
        """Trade the refresh token for a new access token; True when the held one changed.

        ``refused`` is the access token the backend refused: when another call has already
        replaced it, nothing is sent. False when there is no refresh token or endpoint, or the
        backend refuses the refresh token.
        """
        credentials = self.credentials
        if credentials is None or not credentials.refresh_token:
            return False
        if self.resolve(REFRESH_ENDPOINT) is None:
            log.info("The backend has no token refresh endpoint")
            return False
        async with self._refresh_lock:
            if credentials is not self.credentials:
                return self.credentials is not None
            if refused is not None and credentials.access_token != refused:
                return True  # refreshed meanwhile
            try:
                _, value = await self._call(
                    REFRESH_ENDPOINT, {"refresh_token": credentials.refresh_token}, False, None,
                    check_in_band=False)
            except (NotSignedInError, EndpointUnsupportedError, BackendRequestError) as exc:
                _scrub(exc, self._secrets())
                log.info("The token refresh was refused: %s", exc.message)
                return False
            token = value.get("access_token") if isinstance(value, Mapping) else None
            if (not isinstance(token, str) or not token
                    or (isinstance(value, Mapping) and value.get("success") is False)):
                log.info("The token refresh was refused: %s",
                         text_of(value) or "no access token in the answer")
                return False
            credentials.access_token = token
            rotated = value.get("refresh_token")
            if isinstance(rotated, str) and rotated:
                credentials.refresh_token = rotated
            log.info("The access token was refreshed")
            if self.on_credentials_changed is not None:
                self.on_credentials_changed(credentials)
            return True

    async def probe_seed_names(self) -> tuple[ProfileName | None, str]:
        """Which profile this backend answers: ``ping``, then the seed's ``verify_session``.

        Returns the profile (None when the probe says nothing) and the reason, for the log. No
        credential is sent: only whether the method exists matters.
        """
        base = self.config.active_url
        host = _host(base)
        if not await self.check_health(base):
            return None, f"{host} did not answer {self.config.health_url(base)} with JSON"
        seed = PROFILES["oropendola"]["auth.verify_session"]
        started = time.monotonic()
        try:
            response = await self._send(seed, self.config.url_for(seed, base), None, {})
        except httpx.HTTPError as exc:
            return None, f"{seed.method} could not be asked ({type(exc).__name__})"
        self._log_request("profile probe", seed, base, str(response.status_code), started)
        if response.status_code == 417 and METHOD_MISSING_MARK in response.text:
            return PUBLISHED, (
                f"the seed's {seed.method} answered HTTP 417 \"Failed to get method\": {host} "
                "is the published Oropendola app")
        if json_object(response) is not None and response.status_code < 500:
            return "oropendola", (
                f"the seed's {seed.method} exists on {host} (HTTP {response.status_code})")
        return None, f"{seed.method} answered HTTP {response.status_code} without a JSON envelope"

    def use_profile(self, profile: ProfileName) -> None:
        """Switch the endpoint names to ``profile`` (forgetting what was found unsupported)."""
        if profile != self.config.profile:
            self.config.profile = profile
            self._unsupported.clear()

    def _login_url(self, url: str) -> str:
        """The page to open, made absolute; only https (http on loopback) is ever opened."""
        absolute = urljoin(self.config.active_url, url.strip())
        parts = urlsplit(absolute)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadResponseError(f"The backend's sign-in page {url!r} is not a web address")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise BadResponseError(
                f"The backend's sign-in page {absolute} is plain http:// on a remote host: "
                "refusing to send you there (only https:// is opened)")
        return absolute

    async def check_health(self, base_url: str) -> bool:
        """True when ``GET <base_url>api/method/ping`` answers HTTP 200 with a JSON body."""
        base = normalize_base_url(base_url)
        url = self.config.health_url(base)
        started = time.monotonic()
        try:
            response = await self._send_capped(self._http.build_request(
                "GET", url, timeout=httpx.Timeout(self._health_timeout)))
        except (httpx.HTTPError, BadResponseError) as exc:
            log.debug("health %s -> %s (%.0f ms)", _host(base), type(exc).__name__,
                      (time.monotonic() - started) * 1000)
            return False
        try:
            json.loads(response.content)
            is_json = True
        except ValueError:
            is_json = False
        healthy = response.status_code == 200 and is_json
        log.debug("health %s -> %s%s (%.0f ms)", _host(base), response.status_code,
                  "" if is_json else " not JSON", (time.monotonic() - started) * 1000)
        return healthy

    async def recheck_primary(self) -> bool:
        """Check the primary URL now; switch back to it from a fallback when it is healthy."""
        primary = self.config.primary_url
        self._last_primary_check = time.monotonic()
        healthy = await self.check_health(primary)
        if healthy and self.config.on_fallback:
            async with self._failover_lock:
                if self.config.on_fallback:
                    self._switch(primary)
        return healthy

    # -- internals ---------------------------------------------------------------------------

    def _secrets(self, *extra: str | None) -> list[str | None]:
        held = self.credentials.secret_values if self.credentials is not None else ()
        return [*held, *extra]

    @contextlib.contextmanager
    def _scrubbing(self, *extra: str | None) -> Iterator[None]:
        """Safety net: remove every known secret from a `BackendError` leaving the block."""
        entry_secrets = self._secrets(*extra)
        try:
            yield
        except BackendError as exc:
            _scrub(exc, [*entry_secrets, *self._secrets()])
            raise

    async def _verify(self, credentials: Credentials, auth_error: AuthErrorFactory | None) -> str:
        _, value = await self._call(
            "auth.verify_session", None, True, credentials, auth_error=auth_error
        )
        user = value.get("user") or value.get("email") if isinstance(value, dict) else value
        if (user is not None and not isinstance(user, str)) or (
                isinstance(value, dict) and not ({"user", "email"} & value.keys())):
            raise BadResponseError("The backend's answer to auth.verify_session names no user:"
                                   " check serverUrl")
        if not isinstance(user, str) or not user.strip() or user == "Guest":
            text = "the backend treats these credentials as Guest"
            raise auth_error(None, text) if auth_error else NotSignedInError(text)
        return user

    async def _verify_token(self, credentials: Credentials) -> str:
        """Who an access token belongs to: the published app's profile answer (§2.3, §2.7)."""
        value = await self._call_refreshing(WHOAMI_ENDPOINT, None, None)
        profile = value.get("profile") if isinstance(value, Mapping) else None
        email = profile.get("email") if isinstance(profile, Mapping) else None
        if not isinstance(profile, Mapping) or not isinstance(email, str) or not email:
            raise BadResponseError("The backend's profile answer names no user")
        full_name = profile.get("full_name")
        if isinstance(full_name, str) and full_name and self.credentials is credentials:
            credentials.full_name = full_name
        return email

    async def _call_refreshing(
        self, name: str, params: Mapping[str, Any] | None, idempotent: bool | None
    ) -> Any:
        """`_call` with the held credentials; a refused access token is refreshed once.

        A token still refused after that (or with no refresh possible) is `SignInAgainError`.
        """
        credentials = self.credentials
        used = credentials.access_token if credentials is not None else None
        try:
            _, value = await self._call(name, params, idempotent, credentials)
            return value
        except NotSignedInError as exc:
            if not exc.token_refused:
                raise
            refused = exc
        log.info("%s: the backend refused the access token; trying a refresh", name)
        if not await self.refresh_access_token(used):
            raise SignInAgainError(refused.detail, status=refused.status) from refused
        try:
            _, value = await self._call(name, params, idempotent, self.credentials)
        except NotSignedInError as exc:
            if exc.token_refused:
                raise SignInAgainError(exc.detail, status=exc.status) from exc
            raise
        return value

    async def _call(
        self,
        name: str,
        params: Mapping[str, Any] | None,
        idempotent: bool | None,
        credentials: Credentials | None,
        *,
        auth_error: AuthErrorFactory | None = None,
        check_in_band: bool = True,
    ) -> tuple[httpx.Response, Any]:
        """One call of ``name``. ``check_in_band=False`` returns in-band failures as values."""
        known = self._unsupported.get(name)
        if known is not None:
            raise EndpointUnsupportedError(known, status=417)
        endpoint = self.resolve(name)
        if endpoint is None:
            if name not in LOGICAL_NAMES:
                raise EndpointUnsupportedError(f"Unknown backend endpoint {name!r}")
            raise EndpointUnsupportedError(
                f"The {self.config.profile} profile has no method for {name}: set one in the "
                "`endpoints` setting"
            )
        idempotent = endpoint.verb == "GET" if idempotent is None else idempotent
        await self._maybe_recheck_primary()
        try:
            return await self._call_endpoint(
                name, endpoint, params, idempotent, credentials, auth_error, check_in_band
            )
        except _MethodMissing:
            pass
        host = _host(self.config.active_url)
        alternative = self.config.alternative(name)
        if alternative is None:
            message = (
                f"The backend at {host} does not support {name}: it has no method "
                f"{endpoint.method} (HTTP 417 \"Failed to get method\"). If your backend uses "
                "another name, set it in the `endpoints` setting"
            )
            self._unsupported[name] = message
            raise EndpointUnsupportedError(message, status=417)
        log.info("%s: %s is not on %s; trying %s", name, endpoint.method, host,
                 alternative.method)
        try:
            result = await self._call_endpoint(
                name, alternative, params, idempotent, credentials, auth_error, check_in_band
            )
        except _MethodMissing:
            message = (
                f"The backend at {host} does not support {name}: neither {endpoint.method} nor "
                f"{alternative.method} exists there (HTTP 417 \"Failed to get method\"). If your "
                "backend uses another name, set it in the `endpoints` setting"
            )
            self._unsupported[name] = message
            raise EndpointUnsupportedError(message, status=417) from None
        except (BackendUnavailableError, BadResponseError):
            raise  # no evidence either way
        except BackendError:
            self.config.learn(name, alternative)  # it answered, so the method exists
            raise
        self.config.learn(name, alternative)
        log.info("%s: using %s from now on", name, alternative.method)
        return result

    async def _call_endpoint(
        self,
        name: str,
        endpoint: Endpoint,
        params: Mapping[str, Any] | None,
        idempotent: bool,
        credentials: Credentials | None,
        auth_error: AuthErrorFactory | None,
        check_in_band: bool = True,
    ) -> tuple[httpx.Response, Any]:
        headers = self._auth_headers(endpoint, credentials)
        sent = self._with_api_key(endpoint, params, credentials)
        token_sent = "X-Access-Token" in headers or (sent is not params)
        response, base = await self._exchange(name, endpoint, sent, idempotent, headers)
        try:
            value = self._interpret(name, endpoint, base, response, bool(headers) or token_sent,
                                    auth_error, check_in_band=check_in_band)
        except NotSignedInError as exc:
            exc.token_refused = token_sent
            if not token_sent and credentials is not None and credentials.token_only:
                raise NotSignedInError(
                    f"the backend's {endpoint.method} does not take the browser sign-in's access"
                    " token; it needs a password or API key sign-in", status=exc.status,
                ) from exc
            raise
        return response, value

    @staticmethod
    def _with_api_key(endpoint: Endpoint, params: Mapping[str, Any] | None,
                      credentials: Credentials | None) -> Mapping[str, Any] | None:
        """``params`` plus ``api_key`` = the access token, for the methods that read it there
        (the agent); the same object when nothing is added."""
        if (endpoint.auth == "none" or credentials is None or not credentials.access_token
                or not takes_api_key(endpoint) or (params is not None and "api_key" in params)):
            return params
        return {**(params or {}), "api_key": credentials.access_token}

    @staticmethod
    def _auth_headers(endpoint: Endpoint, credentials: Credentials | None) -> dict[str, str]:
        if endpoint.auth == "none" or credentials is None:
            return {}
        headers: dict[str, str] = {}
        if endpoint.auth == "access_token" and credentials.access_token:
            headers["X-Access-Token"] = credentials.access_token
        if credentials.sid:
            headers["Cookie"] = f"sid={credentials.sid}"
        if credentials.api_key and credentials.api_secret:
            headers["Authorization"] = f"token {credentials.api_key}:{credentials.api_secret}"
        if credentials.csrf_token:
            headers["X-Frappe-CSRF-Token"] = credentials.csrf_token
        return headers

    async def _send(
        self,
        endpoint: Endpoint,
        url: str,
        params: Mapping[str, Any] | None,
        headers: dict[str, str],
    ) -> httpx.Response:
        uploads = {k: v for k, v in (params or {}).items() if isinstance(v, Upload)}
        if uploads and endpoint.verb != "POST":
            raise BackendRequestError(
                f"Cannot upload a file with {endpoint.verb} {endpoint.method}: file uploads need "
                "a POST endpoint (check the `endpoints` setting)"
            )
        if uploads:
            fields = {
                key: value if isinstance(value, str) else json.dumps(value)
                for key, value in (params or {}).items()
                if value is not None and key not in uploads
            }
            files = {key: (u.filename, u.data, u.content_type) for key, u in uploads.items()}
            request = self._http.build_request("POST", url, data=fields, files=files,
                                               headers=headers)
        elif endpoint.verb == "GET":
            query = {
                key: value if isinstance(value, str) else json.dumps(value)
                for key, value in (params or {}).items()
                if value is not None
            }
            request = self._http.build_request("GET", url, params=query, headers=headers)
        else:
            request = self._http.build_request("POST", url, json=dict(params or {}),
                                               headers=headers)
        return await self._send_capped(request)

    async def _send_capped(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and read its answer with `_read_capped`."""
        response = await self._http.send(request, stream=True)
        try:
            await self._read_capped(response)
        finally:
            await response.aclose()
        return response

    async def _read_capped(self, response: httpx.Response) -> None:
        """Read a streamed answer, refusing one larger than MAX_RESPONSE_BYTES (declared or
        counted, after decoding) as soon as that is known, and one that takes longer than the
        request timeout in all (a body trickling in never trips httpx's per-read timeout)."""
        request = response.request
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
            raise self._too_large(request, f"{int(declared):,} bytes")
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.timeout):
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES:
                        raise self._too_large(request, f"more than {MAX_RESPONSE_BYTES:,} bytes")
                    chunks.append(chunk)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(
                f"the answer took longer than {self.timeout:g} s", request=request) from exc
        response._content = b"".join(chunks)  # what Response.aread() sets

    @staticmethod
    def _too_large(request: httpx.Request, size: str) -> BadResponseError:
        return BadResponseError(
            f"The backend's answer to {request.url.path} is larger than the "
            f"{MAX_RESPONSE_BYTES // (1024 * 1024)} MiB limit ({size}): refused; check serverUrl"
        )

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, backoff_base * 2**attempt], capped."""
        return _rng.uniform(0.0, min(MAX_BACKOFF, self.backoff_base * 2**attempt))

    async def _exchange(
        self,
        name: str,
        endpoint: Endpoint,
        params: Mapping[str, Any] | None,
        idempotent: bool,
        headers: dict[str, str],
    ) -> tuple[httpx.Response, str]:
        """Send until an answer that is neither 429 nor 5xx arrives, or raise.

        Retries (at most ``max_retries``): connection never established (any call); other
        network errors but a read/write timeout, and 5xx (idempotent calls only); 429 with a
        short enough Retry-After (which every later call also waits out).
        Failover to a healthy candidate URL on connect failures and repeated 5xx.
        """
        attempt = 0
        failed: list[str] = []
        server_errors = 0
        while True:
            await self._wait_for_rate_limit(name, self.config.active_url)
            base = self.config.active_url
            url = self.config.url_for(endpoint, base)
            started = time.monotonic()
            try:
                response = await self._send(endpoint, url, params, headers)
            except httpx.RequestError as exc:
                self._log_request(name, endpoint, base, type(exc).__name__, started)
                if isinstance(exc, httpx.DecodingError):
                    raise BadResponseError(
                        f"The backend at {_host(base)} sent a body that cannot be decoded "
                        f"({exc}): check serverUrl"
                    ) from exc
                connect_failed = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                never_sent = connect_failed or isinstance(exc, httpx.PoolTimeout)
                if connect_failed:
                    if base not in failed:
                        failed.append(base)
                    if await self._failover(base, failed):
                        continue
                tls_failure = any(isinstance(e, ssl.SSLError) for e in _causes(exc))
                # A backend that was reached but did not answer within apiRequestTimeout is not
                # asked again: the user would wait (max_retries + 1) times the timeout.
                too_slow = isinstance(exc, httpx.TimeoutException) and not never_sent
                if (never_sent or (idempotent and not too_slow)) and not tls_failure \
                        and attempt < self.max_retries:
                    await asyncio.sleep(self._backoff(attempt))
                    attempt += 1
                    continue
                raise self._unavailable(base, exc, failed) from exc
            status = response.status_code
            self._log_request(name, endpoint, base, str(status), started)
            if status == 429:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if retry_after is not None:
                    self._rate_limited_until = max(self._rate_limited_until,
                                                   time.monotonic() + retry_after)
                wait = retry_after if retry_after is not None else self._backoff(attempt)
                if attempt < self.max_retries and wait <= self.max_retry_after:
                    log.info("%s is rate limited by %s; retrying in %.1f s", name, _host(base),
                             wait)
                    await asyncio.sleep(wait)
                    attempt += 1
                    continue
                raise self._rate_limited(base, retry_after, json_object(response))
            if status >= 500:
                server_errors += 1
                if idempotent:
                    if server_errors >= 2:
                        failed.append(base)
                        if await self._failover(base, failed):
                            server_errors = 0
                            continue
                    if attempt < self.max_retries:
                        await asyncio.sleep(self._backoff(attempt))
                        attempt += 1
                        continue
                raise self._server_error(base, response)
            return response, base

    async def _wait_for_rate_limit(self, name: str, base: str) -> None:
        """Before sending: wait out a ``Retry-After`` the backend gave any call; one longer
        than ``max_retry_after`` fails the call at once, without sending it."""
        wait = self._rate_limited_until - time.monotonic()
        if wait <= 0:
            return
        if wait > self.max_retry_after:
            raise self._rate_limited(base, wait, None)
        log.info("%s waits %.1f s: %s asked to retry after that", name, wait, _host(base))
        await asyncio.sleep(wait)

    def _log_request(
        self, name: str, endpoint: Endpoint, base: str, outcome: str, started: float
    ) -> None:
        log.debug("%s %s %s @ %s -> %s (%.0f ms)", name, endpoint.verb, endpoint.method,
                  _host(base), outcome, (time.monotonic() - started) * 1000)

    def _unavailable(
        self, base: str, exc: httpx.RequestError, failed: list[str]
    ) -> BackendUnavailableError:
        others = [url for url in failed if url != base]
        also = f" (also tried {', '.join(others)})" if others else ""
        prefix = f"Cannot reach the Oropendola backend at {base}{also}"
        if isinstance(exc, httpx.ConnectTimeout):
            reason = f"timed out connecting after {_seconds(self._connect_timeout)}"
        elif isinstance(exc, httpx.TimeoutException):
            return BackendUnavailableError(
                f"{prefix}: timed out after {_seconds(self.timeout)} (apiRequestTimeout). The "
                "backend may be busy: try again, or raise apiRequestTimeout"
            )
        elif tls := next((e for e in _causes(exc) if isinstance(e, ssl.SSLError)), None):
            detail = getattr(tls, "verify_message", None) or tls.reason or str(tls)
            reason = f"the TLS connection failed ({detail})"
        elif any(isinstance(e, ConnectionRefusedError) for e in _causes(exc)):
            reason = "connection refused"
        elif isinstance(exc, httpx.ConnectError) and re.search(
            r"name or service|nodename|getaddrinfo|name resolution|no address", str(exc), re.I
        ):
            reason = "the host name cannot be resolved"
        elif isinstance(exc, httpx.ConnectError):
            reason = f"the connection failed ({exc})"
        else:
            reason = f"the connection broke before an answer arrived ({type(exc).__name__})"
        return BackendUnavailableError(f"{prefix}: {reason}. Check serverUrl or your network.")

    def _rate_limited(
        self, base: str, retry_after: float | None, body: dict[str, Any] | None
    ) -> RateLimitedError:
        detail = error_text(body) if body else ""
        detail = f" ({detail})" if detail else ""
        if retry_after is None:
            when = "try again later"
        else:
            at = datetime.now().astimezone().timestamp() + retry_after
            clock = datetime.fromtimestamp(at).astimezone().strftime("%H:%M:%S")
            when = f"try again in {max(1, math.ceil(retry_after))} s (after {clock})"
        return RateLimitedError(
            f"The Oropendola backend at {_host(base)} is rate limiting requests{detail}: {when}",
            retry_after=retry_after,
        )

    def _server_error(self, base: str, response: httpx.Response) -> BackendUnavailableError:
        body = json_object(response)
        text = error_text(body) if body else ""
        detail = f": {text}" if text else f" ({response.reason_phrase})"
        return BackendUnavailableError(
            f"The Oropendola backend at {_host(base)} failed with HTTP {response.status_code}"
            f"{detail}. Try again later.",
            status=response.status_code,
        )

    def _interpret(
        self,
        name: str,
        endpoint: Endpoint,
        base: str,
        response: httpx.Response,
        credentials_sent: bool,
        auth_error: AuthErrorFactory | None,
        *,
        check_in_band: bool = True,
    ) -> Any:
        """Turn a (non-429, non-5xx) response into the method's value, or raise.

        ``check_in_band=False``: a failure reported inside an HTTP 200 answer is returned as
        the value (for callers that read ``status`` themselves, e.g. "expired")."""
        status = response.status_code
        host = _host(base)
        if 300 <= status < 400:
            location = response.headers.get("Location")
            target = f" to {location}" if location else ""
            raise BadResponseError(
                f"The backend at {host} answered {endpoint.method} with HTTP {status} (a "
                f"redirect{target}) instead of JSON: serverUrl may be wrong; use the site's "
                "final https:// address",
                status=status,
            )
        body = json_object(response)
        if body is None:
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            what = content_type or ("an empty body" if not response.content else "no content type")
            raise BadResponseError(
                f"The backend at {host} answered {endpoint.method} with HTTP {status} and "
                f"{what} instead of a JSON envelope: serverUrl ({base}) may not point to an "
                "Oropendola (Frappe) site",
                status=status,
            )
        if body.get("session_expired") in (1, "1", True):
            raise SessionExpiredError(status=status)
        if status in (401, 403):
            text = error_text(body)
            if auth_error is not None:
                raise auth_error(status, text)
            if credentials_sent:
                text = "the backend refused the stored session" + (f": {text}" if text else "")
            raise NotSignedInError(text, status=status)
        if status == 417 and METHOD_MISSING_MARK in response.text:
            raise _MethodMissing(endpoint.method)
        if status >= 400 or "exc_type" in body:
            text = error_text(body) or response.reason_phrase
            raise BackendRequestError(
                f"The backend refused {name} ({endpoint.method}) with HTTP {status}: {text}",
                status=status,
            )
        if "message" in body:
            value = body["message"]
        else:
            value = {k: v for k, v in body.items() if k not in FRAPPE_EXTRA_KEYS} or None
        failure = in_band_failure(value) if check_in_band else None
        if failure is not None:
            in_status, text = failure
            if in_status in (401, 403) and auth_error is not None:
                raise auth_error(in_status, text)
            budget = value.get("budget_remaining") if isinstance(value, Mapping) else None
            raise in_band_error(in_status if in_status is not None else status, text,
                                what=name, where=host, budget=budget)
        return value

    # -- failover ----------------------------------------------------------------------------

    def _switch(self, url: str) -> None:
        previous = self.config.active_url
        self.config.switch_to(url)
        self._unsupported.clear()
        if url == self.config.primary_url:
            log.info("The primary Oropendola backend %s is healthy again; switched back from %s",
                     url, previous)
        else:
            self._last_primary_check = time.monotonic()
            log.info("The Oropendola backend %s is unreachable; switched to %s", previous, url)

    async def _failover(self, failing: str, failed: list[str]) -> bool:
        """Switch to the first healthy candidate not in ``failed``; True when switched."""
        if len(self.config.candidate_urls) < 2:
            return False
        async with self._failover_lock:
            active = self.config.active_url
            if active != failing and active not in failed:
                return True  # another call switched meanwhile
            for url in self.config.candidate_urls:
                if url not in failed and await self.check_health(url):
                    self._switch(url)
                    return True
        log.info("No healthy Oropendola backend among %s", ", ".join(self.config.candidate_urls))
        return False

    async def _maybe_recheck_primary(self) -> None:
        if not self.config.on_fallback:
            return
        if time.monotonic() - self._last_primary_check < self.primary_recheck_interval:
            return
        await self.recheck_primary()

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
- retries 429 (honouring ``Retry-After``), network errors and 5xx with exponential backoff and
  full jitter; a non-idempotent call is retried only when the request was never sent;
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
import random
import re
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

import attrs
import httpx

from oropendola_ls import __version__
from oropendola_ls.backend.endpoints import (
    LOGICAL_NAMES,
    BackendConfig,
    Endpoint,
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
)
from oropendola_ls.backend.redact import RedactingFilter, redact
from oropendola_ls.backend.session import Credentials

log = logging.getLogger(__name__)

USER_AGENT = f"oropendola-ls/{__version__}"
HEALTH_TIMEOUT = 5.0
CONNECT_TIMEOUT = 10.0
MAX_BACKOFF = 30.0

AuthErrorFactory = Callable[[int | None, str], BackendError]
"""Builds the error for a 401/403 (HTTP or in-band) from the status and the backend's text."""

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


class _MethodMissing(Exception):
    """HTTP 417 "Failed to get method": the backend has no such method (internal signal)."""


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
        self._unsupported: dict[str, str] = {}
        self._failover_lock = asyncio.Lock()
        self._last_primary_check = time.monotonic()

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
            _, value = await self._call(name, params, idempotent, self.credentials)
            return value

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
        endpoint = self.config.endpoint(name)
        if endpoint is None:
            raise EndpointUnsupportedError(
                f"The {self.config.profile} profile has no method for {name}")
        with self._scrubbing():
            headers = self._auth_headers(endpoint, self.credentials)
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
                await response.aread()
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
            return await self._verify(credentials, None)

    async def logout(self) -> None:
        """End the backend session (best effort) and forget the credentials."""
        credentials = self.credentials
        if credentials is not None and credentials.sid:
            try:
                await self._call("auth.logout", None, False, credentials)
            except BackendError as exc:
                _scrub(exc, self._secrets())
                log.info("Sign-out request failed (%s); the local session is cleared anyway",
                         exc.message)
        self.credentials = None

    async def check_health(self, base_url: str) -> bool:
        """True when ``GET <base_url>api/method/ping`` answers HTTP 200 with a JSON body."""
        base = normalize_base_url(base_url)
        url = self.config.health_url(base)
        started = time.monotonic()
        try:
            response = await self._http.get(url, timeout=httpx.Timeout(self._health_timeout))
        except httpx.HTTPError as exc:
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
        if not isinstance(user, str) or not user.strip() or user == "Guest":
            text = "the backend treats these credentials as Guest"
            raise auth_error(None, text) if auth_error else NotSignedInError(text)
        return user

    async def _call(
        self,
        name: str,
        params: Mapping[str, Any] | None,
        idempotent: bool | None,
        credentials: Credentials | None,
        *,
        auth_error: AuthErrorFactory | None = None,
    ) -> tuple[httpx.Response, Any]:
        known = self._unsupported.get(name)
        if known is not None:
            raise EndpointUnsupportedError(known, status=417)
        endpoint = self.config.endpoint(name)
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
                name, endpoint, params, idempotent, credentials, auth_error
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
                name, alternative, params, idempotent, credentials, auth_error
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
    ) -> tuple[httpx.Response, Any]:
        headers = self._auth_headers(endpoint, credentials)
        response, base = await self._exchange(name, endpoint, params, idempotent, headers)
        value = self._interpret(name, endpoint, base, response, bool(headers), auth_error)
        return response, value

    @staticmethod
    def _auth_headers(endpoint: Endpoint, credentials: Credentials | None) -> dict[str, str]:
        if endpoint.auth == "none" or credentials is None:
            return {}
        headers: dict[str, str] = {}
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
            return await self._http.post(url, data=fields, files=files, headers=headers)
        if endpoint.verb == "GET":
            query = {
                key: value if isinstance(value, str) else json.dumps(value)
                for key, value in (params or {}).items()
                if value is not None
            }
            return await self._http.get(url, params=query, headers=headers)
        return await self._http.post(url, json=dict(params or {}), headers=headers)

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
        network errors and 5xx (idempotent calls only); 429 with a short enough Retry-After.
        Failover to a healthy candidate URL on connect failures and repeated 5xx.
        """
        attempt = 0
        failed: list[str] = []
        server_errors = 0
        while True:
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
                if (never_sent or idempotent) and not tls_failure and attempt < self.max_retries:
                    await asyncio.sleep(self._backoff(attempt))
                    attempt += 1
                    continue
                raise self._unavailable(base, exc, failed) from exc
            status = response.status_code
            self._log_request(name, endpoint, base, str(status), started)
            if status == 429:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
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
    ) -> Any:
        """Turn a (non-429, non-5xx) response into the method's value, or raise."""
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
        failure = in_band_failure(value)
        if failure is not None:
            in_status, text = failure
            if in_status in (401, 403):
                if auth_error is not None:
                    raise auth_error(in_status, text)
                raise NotSignedInError(text, status=in_status)
            if in_status == 429:
                raise RateLimitedError(
                    f"The Oropendola backend at {host} is rate limiting requests ({text}): "
                    "try again later",
                    retry_after=None,
                )
            raise BackendRequestError(f"{name} failed: {text}", status=in_status or status)
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

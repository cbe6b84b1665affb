"""Errors the backend client raises, each with a message a person can act on.

Messages never contain a session id, API secret or token: they are shown in editors and logs.
"""

from __future__ import annotations

SIGN_IN_HINT = "run `oropendola-ls login` or the `oropendola/signIn` request"


class BackendError(Exception):
    """A backend call that did not give a usable answer. ``kind`` is a stable machine name."""

    kind = "backend_error"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class NotSignedInError(BackendError):
    kind = "not_signed_in"
    token_refused = False
    """True when the credential the backend refused was an access token (a refresh may help)."""

    def __init__(self, detail: str = "", *, status: int | None = None) -> None:
        reason = f" ({detail})" if detail else ""
        super().__init__(f"Not signed in{reason}: {SIGN_IN_HINT}", status=status)
        self.detail = detail


class SessionExpiredError(NotSignedInError):
    kind = "session_expired"

    def __init__(self, *, status: int | None = None) -> None:
        BackendError.__init__(
            self,
            f"Your Oropendola session has expired: sign in again ({SIGN_IN_HINT})",
            status=status,
        )
        self.detail = ""


class SignInAgainError(SessionExpiredError):
    """An access token the backend no longer accepts (revoked, expired, refresh refused)."""

    token_refused = True

    def __init__(self, detail: str = "", *, status: int | None = None) -> None:
        reason = f" ({detail})" if detail else ""
        BackendError.__init__(
            self,
            f"Oropendola no longer accepts your sign-in{reason}: sign in again ({SIGN_IN_HINT})",
            status=status,
        )
        self.detail = detail


class SignInExpiredError(BackendError):
    """A browser sign-in that was not completed in time."""

    kind = "sign_in_expired"


class InvalidCredentialsError(BackendError):
    kind = "invalid_credentials"


class EndpointUnsupportedError(BackendError):
    kind = "endpoint_unsupported"


class RateLimitedError(BackendError):
    kind = "rate_limited"

    def __init__(
        self, message: str, *, retry_after: float | None, status: int | None = 429
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class BackendUnavailableError(BackendError):
    """Connection refused, timed out, or a 5xx after the retries allowed for the call."""

    kind = "backend_unavailable"


class BadResponseError(BackendError):
    """The backend answered something that is not a Frappe JSON envelope (HTML, truncated JSON)."""

    kind = "bad_response"


class BackendRequestError(BackendError):
    """The backend understood the call and refused it (in-band error or a 4xx)."""

    kind = "request_failed"


def in_band_error(
    status: int | None, text: str, *, what: str, where: str, budget: object = None
) -> BackendError:
    """The error for a failure the backend reported inside an HTTP 200 answer.

    ``status`` is the answer's own ``status`` (protocol.md §2.4), ``text`` what the backend said,
    ``what`` the call ("chat.send_message"), ``where`` the backend's host.
    """
    if status in (401, 403):
        return NotSignedInError(text, status=status)
    if status == 429:
        left = f"; budget remaining: {budget}" if budget is not None else ""
        return RateLimitedError(
            f"Oropendola refused {what}: {text}{left}. A rate limit, quota or budget of your "
            "plan is used up for now: try again later, or check your plan with "
            "`oropendola-ls status`",
            retry_after=None,
        )
    if status == 503:
        return BackendUnavailableError(
            f"No models are available right now at {where} ({text}): try again later",
            status=status,
        )
    return BackendRequestError(f"{what} failed: {text}", status=status)

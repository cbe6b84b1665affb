"""Keep secrets (session ids, API secrets, passwords, tokens) out of text, logs and errors.

`redact` replaces known secret values in a string. `RedactingFilter` does the same for log
records: install it on log handlers (or loggers) and add each secret as it becomes known. It
also masks the values of credential-carrying HTTP headers (``Set-Cookie``, ``Cookie``,
``Authorization``, ...) in the header lists httpcore writes to its DEBUG log, and
credential-like query parameters (``api_key=``, ``pwd=``, ...) in logged URLs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote

MASK = "***"
MIN_SECRET_LENGTH = 4

_SENSITIVE_HEADER = re.compile(
    r"""\(b(['"])(set-cookie|cookie|authorization|proxy-authorization|"""
    r"""x-frappe-csrf-token|x-access-token)\1,\s*b(['"]).*?\3\)""",
    re.IGNORECASE,
)
_SENSITIVE_QUERY = re.compile(
    r"([?&](?:api_key|api_secret|pwd|password|sid|token|access_token|refresh_token)=)[^&#\s\"']+",
    re.IGNORECASE,
)


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every secret of at least `MIN_SECRET_LENGTH` characters in ``text`` with ``***``.

    The percent-encoded form of each secret is masked too (it is how a secret looks in a URL or
    a cookie). Longer secrets are replaced first so that one secret containing another is
    masked whole.
    """
    forms: set[str] = set()
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_LENGTH:
            forms.add(secret)
            forms.add(quote(secret, safe=""))
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, MASK)
    return text


def mask_sensitive_headers(text: str) -> str:
    """Mask credential values where HTTP libraries log them.

    That is the values in ``(b'Set-Cookie', b'...')``-style header tuples (httpcore's DEBUG
    log) and credential-like query parameters in URLs (httpx's INFO request line).
    """
    text = _SENSITIVE_HEADER.sub(lambda m: f"(b{m[1]}{m[2]}{m[1]}, b'{MASK}')", text)
    return _SENSITIVE_QUERY.sub(lambda m: f"{m[1]}{MASK}", text)


class RedactingFilter(logging.Filter):
    """A log filter that masks secrets in each record's message, arguments and exception text.

    ``secrets`` is a mutable set: add a session id when signing in, discard it on sign-out.
    Records are never dropped, only rewritten.
    """

    def __init__(self, secrets: Iterable[str | None] = (), *, mask_headers: bool = True) -> None:
        super().__init__()
        self.secrets: set[str] = {s for s in secrets if s}
        self.mask_headers = mask_headers

    def add(self, secret: str | None) -> None:
        if secret:
            self.secrets.add(secret)

    def discard(self, secret: str | None) -> None:
        if secret:
            self.secrets.discard(secret)

    def _clean(self, text: str) -> str:
        if self.mask_headers:
            text = mask_sensitive_headers(text)
        return redact(text, list(self.secrets))

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let the handler report it as usual
            return True
        cleaned = self._clean(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        if record.stack_info:
            record.stack_info = self._clean(record.stack_info)
        return True


_SECRET_PATTERNS = re.compile(
    r"""(?ix)
    (?P<kv>(?:api[_-]?key|api[_-]?secret|access[_-]?token|auth[_-]?token|token|secret|password
           |passwd|pwd|sid)\s*[=:]\s*)(?P<kv_value>["']?[^\s"'&;|]{4,})
    | (?P<auth>(?:authorization:\s*(?:bearer|token|basic)\s+|bearer\s+))(?P<auth_value>[^\s"']{8,})
    | (?P<url>\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)(?P<url_value>[^@\s/]+)(?=@)
    | (?P<known>\b(?:ghp_|gho_|ghs_|github_pat_|glpat-|sk-|xox[abpr]-|AKIA)[A-Za-z0-9_\-]{8,})
    """
)


def redact_patterns(text: str) -> str:
    """Mask secret-looking values in free text (commands, prompts): ``KEY=value`` pairs,
    ``Authorization``/``Bearer`` values, passwords in URLs, and well-known token shapes."""

    def mask(match: re.Match[str]) -> str:
        for prefix in ("kv", "auth", "url"):
            if match.group(prefix) is not None:
                return match.group(prefix) + MASK
        return MASK

    return _SECRET_PATTERNS.sub(mask, text)
